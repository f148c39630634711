ALTER TABLE events ADD COLUMN seq serial;
