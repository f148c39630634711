-- Create the orders table with a constrained status and an index for "orders of a customer" lookups.
CREATE TABLE orders (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  customer_id  bigint NOT NULL REFERENCES customers (id) ON DELETE RESTRICT,
  status       text NOT NULL DEFAULT 'pending'
               CHECK (status IN ('pending', 'paid', 'shipped', 'cancelled', 'refunded')),
  total_cents  bigint NOT NULL DEFAULT 0 CHECK (total_cents >= 0),
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);

-- PostgreSQL does not index the referencing column of a foreign key by itself.
CREATE INDEX orders_customer_id_idx ON orders (customer_id);
