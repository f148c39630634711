-- Drop the orders table and its index (undoes create_orders).
DROP INDEX orders_customer_id_idx;
DROP TABLE orders;
