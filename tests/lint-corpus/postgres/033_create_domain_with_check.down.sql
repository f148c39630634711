DROP DOMAIN positive_amount;
