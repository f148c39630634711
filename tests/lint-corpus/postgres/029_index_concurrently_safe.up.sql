-- safemig:no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_region_idx ON orders (region);
