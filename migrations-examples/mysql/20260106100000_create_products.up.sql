-- Create the products catalogue keyed by SKU and seed the launch range, so order items can reference it.
CREATE TABLE products (
  sku          VARCHAR(32) NOT NULL PRIMARY KEY,
  name         VARCHAR(255) NOT NULL,
  price_cents  BIGINT NOT NULL,
  active       BOOLEAN NOT NULL DEFAULT TRUE,
  created_at   DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  CONSTRAINT products_price_cents_check CHECK (price_cents >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

INSERT INTO products (sku, name, price_cents) VALUES
  ('MUG-001',  'Enamel mug, white',         1290),
  ('MUG-002',  'Enamel mug, blue',          1290),
  ('TEE-S-BK', 'T-shirt, black, size S',    2400),
  ('TEE-M-BK', 'T-shirt, black, size M',    2400),
  ('STK-PACK', 'Maker''s sticker pack',      450);

-- An inactive SKU: listed in the catalogue, not for sale.
INSERT INTO products (sku, name, price_cents, active) VALUES
  ('TEE-L-RD', 'T-shirt, red, size L',      2200, FALSE);
