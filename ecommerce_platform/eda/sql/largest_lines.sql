-- largest_lines: the lines with the largest absolute value, with their flags (outliers to look at).
SELECT invoice_no, stock_code, description, quantity, unit_price, line_total, customer_id,
       invoice_date, is_cancellation, is_sale
FROM transactions
ORDER BY ABS(line_total) DESC, invoice_no, stock_code
LIMIT {limit}
