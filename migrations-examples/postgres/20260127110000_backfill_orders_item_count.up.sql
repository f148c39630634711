-- Add orders.item_count (units per order), backfill it from order_items and keep it in sync, for the order list page.
-- Added with a constant default so ADD COLUMN works on a table that already has rows
-- (and, since PostgreSQL 11, without rewriting the table).
ALTER TABLE orders ADD COLUMN item_count integer NOT NULL DEFAULT 0 CHECK (item_count >= 0);

-- Backfill: one set-based UPDATE; only orders that have lines need it (the rest keep 0).
UPDATE orders
   SET item_count = lines.units
  FROM (SELECT order_id, sum(quantity) AS units
          FROM order_items
         GROUP BY order_id) AS lines
 WHERE lines.order_id = orders.id;

-- New triggers alongside the ones from sync_order_totals_triggers rather than
-- replacing them, so the down never has to recreate another migration's objects.
CREATE FUNCTION order_items_sync_item_count() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    UPDATE orders
       SET item_count = (SELECT COALESCE(sum(quantity), 0)
                           FROM order_items WHERE order_id = OLD.order_id)
     WHERE id = OLD.order_id;
  END IF;
  IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.order_id <> OLD.order_id) THEN
    UPDATE orders
       SET item_count = (SELECT COALESCE(sum(quantity), 0)
                           FROM order_items WHERE order_id = NEW.order_id)
     WHERE id = NEW.order_id;
  END IF;
  RETURN NULL;  -- AFTER trigger: the return value is ignored
END;
$$;

CREATE TRIGGER order_items_item_count_after_insert
AFTER INSERT ON order_items
FOR EACH ROW
EXECUTE FUNCTION order_items_sync_item_count();

CREATE TRIGGER order_items_item_count_after_update
AFTER UPDATE OF order_id, quantity ON order_items
FOR EACH ROW
EXECUTE FUNCTION order_items_sync_item_count();

CREATE TRIGGER order_items_item_count_after_delete
AFTER DELETE ON order_items
FOR EACH ROW
EXECUTE FUNCTION order_items_sync_item_count();

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
