UPDATE customers SET active = true;
