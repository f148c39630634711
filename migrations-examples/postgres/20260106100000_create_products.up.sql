-- Create the products catalogue keyed by SKU and seed the launch range, so order items can reference it.
CREATE TABLE products (
  sku          text PRIMARY KEY,
  name         text NOT NULL,
  price_cents  bigint NOT NULL CHECK (price_cents >= 0),
  active       boolean NOT NULL DEFAULT true,
  created_at   timestamptz NOT NULL DEFAULT now()
);

INSERT INTO products (sku, name, price_cents) VALUES
  ('MUG-001',  'Enamel mug, white',         1290),
  ('MUG-002',  'Enamel mug, blue',          1290),
  ('TEE-S-BK', 'T-shirt, black, size S',    2400),
  ('TEE-M-BK', 'T-shirt, black, size M',    2400),
  ('STK-PACK', 'Maker''s sticker pack',      450);

-- An inactive SKU: listed in the catalogue, not for sale.
INSERT INTO products (sku, name, price_cents, active) VALUES
  ('TEE-L-RD', 'T-shirt, red, size L',      2200, false);
