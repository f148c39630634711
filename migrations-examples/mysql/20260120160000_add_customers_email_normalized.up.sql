-- Add customers.email_normalized (lower-cased, trimmed) and index it, for case-insensitive login lookups.
-- Nullable on purpose: the application fills it on every write from this release on.
ALTER TABLE customers ADD COLUMN email_normalized VARCHAR(255) NULL;

UPDATE customers SET email_normalized = LOWER(TRIM(email)) WHERE email_normalized IS NULL;

-- Not UNIQUE: existing emails that differ only by case would make this migration fail.
-- InnoDB builds the index online (ALGORITHM=INPLACE, LOCK=NONE): writes go on meanwhile.
CREATE INDEX customers_email_normalized_idx ON customers (email_normalized);
