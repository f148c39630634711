ALTER TABLE events DROP CONSTRAINT events_pkey;
