-- Create order_items (lines of an order); deleting an order deletes its lines, a product in use cannot be deleted.
CREATE TABLE order_items (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  order_id          bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
  sku               text NOT NULL REFERENCES products (sku) ON DELETE RESTRICT,
  quantity          integer NOT NULL CHECK (quantity > 0),
  unit_price_cents  bigint NOT NULL CHECK (unit_price_cents >= 0),
  UNIQUE (order_id, sku)
);

-- UNIQUE (order_id, sku) already serves lookups by order_id; this one serves
-- the foreign key check when a product is deleted or its SKU changes.
CREATE INDEX order_items_sku_idx ON order_items (sku);
