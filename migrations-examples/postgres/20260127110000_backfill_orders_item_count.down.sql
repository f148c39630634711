-- Remove orders.item_count with its triggers, function and view (undoes backfill_orders_item_count; DROP COLUMN refuses while the view depends on it).
DROP VIEW order_summaries;
DROP TRIGGER order_items_item_count_after_delete ON order_items;
DROP TRIGGER order_items_item_count_after_update ON order_items;
DROP TRIGGER order_items_item_count_after_insert ON order_items;
DROP FUNCTION order_items_sync_item_count();
ALTER TABLE orders DROP COLUMN item_count;
