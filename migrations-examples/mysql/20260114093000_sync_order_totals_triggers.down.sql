-- Drop the order total / updated_at triggers (undoes sync_order_totals_triggers; stored totals are kept as they are).
DROP TRIGGER orders_touch_updated_at;
DROP TRIGGER order_items_after_delete;
DROP TRIGGER order_items_after_update;
DROP TRIGGER order_items_after_insert;
