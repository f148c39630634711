-- Drop the order total / updated_at triggers and their functions (undoes sync_order_totals_triggers; stored totals are kept as they are).
DROP TRIGGER orders_touch_updated_at ON orders;
DROP FUNCTION orders_touch_updated_at();
DROP TRIGGER order_items_after_delete ON order_items;
DROP TRIGGER order_items_after_update ON order_items;
DROP TRIGGER order_items_after_insert ON order_items;
DROP FUNCTION order_items_sync_order_total();
