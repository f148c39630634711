ALTER TABLE clients RENAME TO customers;
