-- Remove customers.email_normalized and its index (undoes add_customers_email_normalized; the index is dropped by name to mirror the up).
DROP INDEX customers_email_normalized_idx ON customers;
ALTER TABLE customers DROP COLUMN email_normalized;
