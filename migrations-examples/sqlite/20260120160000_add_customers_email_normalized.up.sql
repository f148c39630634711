-- Add customers.email_normalized (lower-cased, trimmed) and index it, for case-insensitive login lookups.
-- Nullable on purpose: ADD COLUMN cannot add NOT NULL without a default, and the
-- application fills it on every write from this release on.
ALTER TABLE customers ADD COLUMN email_normalized TEXT;

UPDATE customers SET email_normalized = lower(trim(email)) WHERE email_normalized IS NULL;

-- Not UNIQUE: existing emails that differ only by case would make this migration fail.
-- Duplicates are reported and merged first; a later migration can tighten it.
CREATE INDEX customers_email_normalized_idx ON customers (email_normalized);
