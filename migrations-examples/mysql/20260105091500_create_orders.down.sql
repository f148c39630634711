-- Drop the orders table (undoes create_orders; its index cannot be dropped first, the foreign key needs it).
DROP TABLE orders;
