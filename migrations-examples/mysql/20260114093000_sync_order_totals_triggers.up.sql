-- Add triggers that keep orders.total_cents and orders.updated_at in sync with order_items, and only let pending orders change lines.
-- Totals of orders that already exist are left as the application wrote them.
-- Each body is sent whole (safemig's splitter knows CREATE TRIGGER ... BEGIN ... END);
-- the mysql client needs DELIMITER lines around them, which safemig accepts too.

CREATE TRIGGER order_items_after_insert
AFTER INSERT ON order_items
FOR EACH ROW
BEGIN
  IF (SELECT status FROM orders WHERE id = NEW.order_id) <> 'pending' THEN
    SIGNAL SQLSTATE '45000'
      SET MESSAGE_TEXT = 'order_items: lines can only be added to a pending order';
  END IF;
  UPDATE orders
     SET total_cents = (SELECT COALESCE(SUM(quantity * unit_price_cents), 0)
                          FROM order_items WHERE order_id = NEW.order_id),
         updated_at  = CURRENT_TIMESTAMP(6)
   WHERE id = NEW.order_id;
END;

CREATE TRIGGER order_items_after_update
AFTER UPDATE ON order_items
FOR EACH ROW
BEGIN
  IF NEW.order_id <> OLD.order_id OR NEW.quantity <> OLD.quantity
     OR NEW.unit_price_cents <> OLD.unit_price_cents THEN
    IF (SELECT status FROM orders WHERE id = NEW.order_id) <> 'pending'
       OR (SELECT status FROM orders WHERE id = OLD.order_id) <> 'pending' THEN
      SIGNAL SQLSTATE '45000'
        SET MESSAGE_TEXT = 'order_items: lines can only be changed on a pending order';
    END IF;
    UPDATE orders
       SET total_cents = (SELECT COALESCE(SUM(quantity * unit_price_cents), 0)
                            FROM order_items WHERE order_id = OLD.order_id),
           updated_at  = CURRENT_TIMESTAMP(6)
     WHERE id = OLD.order_id;
    IF NEW.order_id <> OLD.order_id THEN
      UPDATE orders
         SET total_cents = (SELECT COALESCE(SUM(quantity * unit_price_cents), 0)
                              FROM order_items WHERE order_id = NEW.order_id),
             updated_at  = CURRENT_TIMESTAMP(6)
       WHERE id = NEW.order_id;
    END IF;
  END IF;
END;

-- No status guard on delete: deleting an order cascades to its lines, whatever its status
-- (InnoDB does not fire triggers for cascaded deletes anyway).
CREATE TRIGGER order_items_after_delete
AFTER DELETE ON order_items
FOR EACH ROW
BEGIN
  UPDATE orders
     SET total_cents = (SELECT COALESCE(SUM(quantity * unit_price_cents), 0)
                          FROM order_items WHERE order_id = OLD.order_id),
         updated_at  = CURRENT_TIMESTAMP(6)
   WHERE id = OLD.order_id;
END;

-- Status changes made without touching updated_at get it stamped, in the row being
-- written (a trigger may not UPDATE its own table).
CREATE TRIGGER orders_touch_updated_at
BEFORE UPDATE ON orders
FOR EACH ROW
BEGIN
  IF NEW.updated_at = OLD.updated_at
     AND (NEW.status <> OLD.status OR NEW.customer_id <> OLD.customer_id) THEN
    SET NEW.updated_at = CURRENT_TIMESTAMP(6);
  END IF;
END;
