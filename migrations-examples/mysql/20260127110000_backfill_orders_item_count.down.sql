-- Remove orders.item_count with its triggers and view (undoes backfill_orders_item_count; the view goes first, it reads the column).
DROP VIEW order_summaries;
DROP TRIGGER order_items_item_count_after_delete;
DROP TRIGGER order_items_item_count_after_update;
DROP TRIGGER order_items_item_count_after_insert;
ALTER TABLE orders DROP CONSTRAINT orders_item_count_check;
ALTER TABLE orders DROP COLUMN item_count;
