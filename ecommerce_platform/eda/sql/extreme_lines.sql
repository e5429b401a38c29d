-- extreme_lines: examples of the clean lines flagged (kept, not dropped) for an extreme quantity
-- (EXTREME_QUANTITY units or more either way) or unit price (EXTREME_UNIT_PRICE GBP or more), the
-- bounds of lake/rules.py; the largest first.
SELECT
    invoice_no, stock_code, description, quantity, unit_price, line_total, customer_id, invoice_date,
    ABS(quantity) >= {extreme_quantity} AS extreme_quantity,
    unit_price >= {extreme_unit_price} AS extreme_unit_price,
    is_sale, is_cancellation
FROM transactions
WHERE ABS(quantity) >= {extreme_quantity} OR unit_price >= {extreme_unit_price}
ORDER BY ABS(line_total) DESC, invoice_no, stock_code
LIMIT {limit}
