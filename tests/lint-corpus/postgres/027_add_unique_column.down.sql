ALTER TABLE customers DROP COLUMN handle;
