-- Drop order_items and its index (undoes create_order_items).
DROP INDEX order_items_sku_idx;
DROP TABLE order_items;
