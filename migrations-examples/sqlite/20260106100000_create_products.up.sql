-- Create the products catalogue keyed by SKU and seed the launch range, so order items can reference it.
CREATE TABLE products (
  sku          TEXT PRIMARY KEY,
  name         TEXT NOT NULL,
  price_cents  INTEGER NOT NULL CHECK (price_cents >= 0),
  active       INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
  created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

INSERT INTO products (sku, name, price_cents) VALUES
  ('MUG-001',  'Enamel mug, white',         1290),
  ('MUG-002',  'Enamel mug, blue',          1290),
  ('TEE-S-BK', 'T-shirt, black, size S',    2400),
  ('TEE-M-BK', 'T-shirt, black, size M',    2400),
  ('STK-PACK', 'Maker''s sticker pack',      450);

-- An inactive SKU: listed in the catalogue, not for sale.
INSERT INTO products (sku, name, price_cents, active) VALUES
  ('TEE-L-RD', 'T-shirt, red, size L',      2200, 0);
