-- Drop the customer_order_totals view (undoes create_customer_order_totals_view).
DROP VIEW customer_order_totals;
