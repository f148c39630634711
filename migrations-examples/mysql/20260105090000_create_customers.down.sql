-- Drop the customers table (undoes create_customers; its UNIQUE index goes with it).
DROP TABLE customers;
