-- Create the orders table with a constrained status and an index for "orders of a customer" lookups.
CREATE TABLE orders (
  id           INTEGER PRIMARY KEY,
  customer_id  INTEGER NOT NULL REFERENCES customers (id) ON DELETE RESTRICT,
  status       TEXT NOT NULL DEFAULT 'pending'
               CHECK (status IN ('pending', 'paid', 'shipped', 'cancelled', 'refunded')),
  total_cents  INTEGER NOT NULL DEFAULT 0 CHECK (total_cents >= 0),
  created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
  updated_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

-- The foreign key column is not indexed automatically in SQLite.
CREATE INDEX orders_customer_id_idx ON orders (customer_id);
