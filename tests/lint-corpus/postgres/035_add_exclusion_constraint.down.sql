ALTER TABLE bookings DROP CONSTRAINT bookings_no_overlap;
