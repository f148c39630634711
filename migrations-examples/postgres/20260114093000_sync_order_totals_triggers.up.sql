-- Add triggers that keep orders.total_cents and orders.updated_at in sync with order_items, and only let pending orders change lines.
-- Totals of orders that already exist are left as the application wrote them.

-- One function serves the three order_items triggers; TG_OP tells them apart.
CREATE FUNCTION order_items_sync_order_total() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  -- No status guard on delete: deleting an order cascades to its lines, whatever its status.
  IF TG_OP = 'INSERT'
     AND (SELECT status FROM orders WHERE id = NEW.order_id) <> 'pending' THEN
    RAISE EXCEPTION 'order_items: lines can only be added to a pending order'
      USING ERRCODE = 'check_violation';
  END IF;
  IF TG_OP = 'UPDATE'
     AND ((SELECT status FROM orders WHERE id = NEW.order_id) <> 'pending'
       OR (SELECT status FROM orders WHERE id = OLD.order_id) <> 'pending') THEN
    RAISE EXCEPTION 'order_items: lines can only be changed on a pending order'
      USING ERRCODE = 'check_violation';
  END IF;

  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    UPDATE orders
       SET total_cents = (SELECT COALESCE(sum(quantity * unit_price_cents), 0)
                            FROM order_items WHERE order_id = OLD.order_id),
           updated_at  = now()
     WHERE id = OLD.order_id;
  END IF;
  IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.order_id <> OLD.order_id) THEN
    UPDATE orders
       SET total_cents = (SELECT COALESCE(sum(quantity * unit_price_cents), 0)
                            FROM order_items WHERE order_id = NEW.order_id),
           updated_at  = now()
     WHERE id = NEW.order_id;
  END IF;
  RETURN NULL;  -- AFTER trigger: the return value is ignored
END;
$$;

CREATE TRIGGER order_items_after_insert
AFTER INSERT ON order_items
FOR EACH ROW
EXECUTE FUNCTION order_items_sync_order_total();

CREATE TRIGGER order_items_after_update
AFTER UPDATE OF order_id, quantity, unit_price_cents ON order_items
FOR EACH ROW
EXECUTE FUNCTION order_items_sync_order_total();

CREATE TRIGGER order_items_after_delete
AFTER DELETE ON order_items
FOR EACH ROW
EXECUTE FUNCTION order_items_sync_order_total();

-- Status changes made without touching updated_at get it stamped. A BEFORE trigger
-- sets the new row's value instead of issuing a second UPDATE.
CREATE FUNCTION orders_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END;
$$;

CREATE TRIGGER orders_touch_updated_at
BEFORE UPDATE OF status, customer_id ON orders
FOR EACH ROW
WHEN (NEW.updated_at = OLD.updated_at)
EXECUTE FUNCTION orders_touch_updated_at();
