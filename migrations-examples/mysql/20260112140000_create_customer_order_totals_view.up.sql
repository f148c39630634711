-- Add the customer_order_totals view used by the support dashboard (order count and lifetime spend per customer).
CREATE VIEW customer_order_totals AS
SELECT
  c.id                                         AS customer_id,
  c.email                                      AS email,
  c.name                                       AS name,
  COUNT(o.id)                                  AS order_count,
  CAST(COALESCE(SUM(o.total_cents), 0) AS SIGNED) AS lifetime_cents,
  MAX(o.created_at)                            AS last_order_at
FROM customers AS c
LEFT JOIN orders AS o
  ON o.customer_id = c.id
 AND o.status NOT IN ('cancelled', 'refunded')
GROUP BY c.id, c.email, c.name;
