-- Remove customers.email_normalized and its index (undoes add_customers_email_normalized; the index must go before DROP COLUMN).
DROP INDEX customers_email_normalized_idx;
ALTER TABLE customers DROP COLUMN email_normalized;
