CREATE TABLE legacy_orders (id bigint);
