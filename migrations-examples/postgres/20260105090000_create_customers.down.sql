-- Drop the customers table (undoes create_customers; its identity sequence and UNIQUE index go with it).
DROP TABLE customers;
