-- Drop order_items (undoes create_order_items; its indexes go with it, the foreign keys need them until then).
DROP TABLE order_items;
