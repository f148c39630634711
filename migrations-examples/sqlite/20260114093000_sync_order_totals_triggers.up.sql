-- Add triggers that keep orders.total_cents and orders.updated_at in sync with order_items, and only let pending orders change lines.
-- Totals of orders that already exist are left as the application wrote them.

CREATE TRIGGER order_items_after_insert
AFTER INSERT ON order_items
FOR EACH ROW
BEGIN
  SELECT RAISE(ABORT, 'order_items: lines can only be added to a pending order')
   WHERE (SELECT status FROM orders WHERE id = NEW.order_id) <> 'pending';
  UPDATE orders
     SET total_cents = (SELECT COALESCE(SUM(quantity * unit_price_cents), 0)
                          FROM order_items WHERE order_id = NEW.order_id),
         updated_at  = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
   WHERE id = NEW.order_id;
END;

CREATE TRIGGER order_items_after_update
AFTER UPDATE OF order_id, quantity, unit_price_cents ON order_items
FOR EACH ROW
BEGIN
  SELECT RAISE(ABORT, 'order_items: lines can only be changed on a pending order')
   WHERE (SELECT status FROM orders WHERE id = NEW.order_id) <> 'pending'
      OR (SELECT status FROM orders WHERE id = OLD.order_id) <> 'pending';
  UPDATE orders
     SET total_cents = (SELECT COALESCE(SUM(quantity * unit_price_cents), 0)
                          FROM order_items WHERE order_id = OLD.order_id),
         updated_at  = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
   WHERE id = OLD.order_id;
  UPDATE orders
     SET total_cents = (SELECT COALESCE(SUM(quantity * unit_price_cents), 0)
                          FROM order_items WHERE order_id = NEW.order_id),
         updated_at  = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
   WHERE id = NEW.order_id AND NEW.order_id <> OLD.order_id;
END;

-- No status guard on delete: deleting an order cascades to its lines, whatever its status.
CREATE TRIGGER order_items_after_delete
AFTER DELETE ON order_items
FOR EACH ROW
BEGIN
  UPDATE orders
     SET total_cents = (SELECT COALESCE(SUM(quantity * unit_price_cents), 0)
                          FROM order_items WHERE order_id = OLD.order_id),
         updated_at  = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
   WHERE id = OLD.order_id;
END;

-- Status changes made without touching updated_at get it stamped.
CREATE TRIGGER orders_touch_updated_at
AFTER UPDATE OF status, customer_id ON orders
FOR EACH ROW
WHEN NEW.updated_at = OLD.updated_at
BEGIN
  UPDATE orders
     SET updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
   WHERE id = NEW.id;
END;
