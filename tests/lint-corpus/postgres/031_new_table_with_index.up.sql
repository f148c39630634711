CREATE TABLE coupons (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, code text NOT NULL);
CREATE UNIQUE INDEX coupons_code_idx ON coupons (code);
