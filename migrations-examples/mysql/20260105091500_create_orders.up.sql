-- Create the orders table with a constrained status and an index for "orders of a customer" lookups.
-- The index is declared with the table: InnoDB needs one on a foreign key's column and
-- would otherwise create it under the constraint's name.
CREATE TABLE orders (
  id           BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  customer_id  BIGINT NOT NULL,
  status       VARCHAR(16) NOT NULL DEFAULT 'pending',
  total_cents  BIGINT NOT NULL DEFAULT 0,
  created_at   DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at   DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  KEY orders_customer_id_idx (customer_id),
  CONSTRAINT orders_customer_id_fkey FOREIGN KEY (customer_id)
    REFERENCES customers (id) ON DELETE RESTRICT,
  CONSTRAINT orders_status_check
    CHECK (status IN ('pending', 'paid', 'shipped', 'cancelled', 'refunded')),
  CONSTRAINT orders_total_cents_check CHECK (total_cents >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
