-- Drop the products table and its seed rows (undoes create_products).
DROP TABLE products;
