-- Create order_items (lines of an order); deleting an order deletes its lines, a product in use cannot be deleted.
-- UNIQUE (order_id, sku) serves lookups and the foreign key by order_id;
-- order_items_sku_idx serves the foreign key check when a product is deleted.
CREATE TABLE order_items (
  id                BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  order_id          BIGINT NOT NULL,
  sku               VARCHAR(32) NOT NULL,
  quantity          INT NOT NULL,
  unit_price_cents  BIGINT NOT NULL,
  CONSTRAINT order_items_order_id_sku_key UNIQUE (order_id, sku),
  KEY order_items_sku_idx (sku),
  CONSTRAINT order_items_order_id_fkey FOREIGN KEY (order_id)
    REFERENCES orders (id) ON DELETE CASCADE,
  CONSTRAINT order_items_sku_fkey FOREIGN KEY (sku)
    REFERENCES products (sku) ON DELETE RESTRICT,
  CONSTRAINT order_items_quantity_check CHECK (quantity > 0),
  CONSTRAINT order_items_unit_price_cents_check CHECK (unit_price_cents >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
