-- Drop the customers table (undoes create_customers; its UNIQUE autoindex goes with it).
DROP TABLE customers;
