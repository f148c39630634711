-- safemig:no-transaction
DROP INDEX CONCURRENTLY IF EXISTS orders_region_idx;
