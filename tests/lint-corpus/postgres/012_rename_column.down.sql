ALTER TABLE customers RENAME COLUMN email_address TO email;
