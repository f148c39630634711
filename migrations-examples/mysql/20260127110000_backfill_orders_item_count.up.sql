-- Add orders.item_count (units per order), backfill it from order_items and keep it in sync, for the order list page.
ALTER TABLE orders
  ADD COLUMN item_count INT NOT NULL DEFAULT 0,
  ADD CONSTRAINT orders_item_count_check CHECK (item_count >= 0);

-- Backfill: one multi-table UPDATE; only orders that have lines need it (the rest keep 0).
UPDATE orders
  JOIN (SELECT order_id, SUM(quantity) AS units
          FROM order_items
         GROUP BY order_id) AS line_totals
    ON line_totals.order_id = orders.id
   SET orders.item_count = line_totals.units;

-- New triggers alongside the ones from sync_order_totals_triggers (FOLLOWS keeps their
-- order), so the down never has to recreate another migration's objects.
CREATE TRIGGER order_items_item_count_after_insert
AFTER INSERT ON order_items
FOR EACH ROW FOLLOWS order_items_after_insert
BEGIN
  UPDATE orders
     SET item_count = (SELECT COALESCE(SUM(quantity), 0)
                         FROM order_items WHERE order_id = NEW.order_id)
   WHERE id = NEW.order_id;
END;

CREATE TRIGGER order_items_item_count_after_update
AFTER UPDATE ON order_items
FOR EACH ROW FOLLOWS order_items_after_update
BEGIN
  IF NEW.order_id <> OLD.order_id OR NEW.quantity <> OLD.quantity THEN
    UPDATE orders
       SET item_count = (SELECT COALESCE(SUM(quantity), 0)
                           FROM order_items WHERE order_id = OLD.order_id)
     WHERE id = OLD.order_id;
    UPDATE orders
       SET item_count = (SELECT COALESCE(SUM(quantity), 0)
                           FROM order_items WHERE order_id = NEW.order_id)
     WHERE id = NEW.order_id;
  END IF;
END;

CREATE TRIGGER order_items_item_count_after_delete
AFTER DELETE ON order_items
FOR EACH ROW FOLLOWS order_items_after_delete
BEGIN
  UPDATE orders
     SET item_count = (SELECT COALESCE(SUM(quantity), 0)
                         FROM order_items WHERE order_id = OLD.order_id)
   WHERE id = OLD.order_id;
END;

-- The order list page reads this view.
CREATE VIEW order_summaries AS
SELECT
  o.id          AS order_id,
  o.customer_id AS customer_id,
  c.email       AS customer_email,
  o.status      AS status,
  o.item_count  AS item_count,
  o.total_cents AS total_cents,
  o.created_at  AS created_at,
  o.updated_at  AS updated_at
FROM orders AS o
JOIN customers AS c ON c.id = o.customer_id;
