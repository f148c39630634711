-- Remove customers.email_normalized and its index (undoes add_customers_email_normalized; DROP COLUMN would take the index along, it is dropped by name to mirror the up).
DROP INDEX customers_email_normalized_idx;
ALTER TABLE customers DROP COLUMN email_normalized;
