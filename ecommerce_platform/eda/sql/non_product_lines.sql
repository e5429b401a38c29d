-- non_product_lines: the lines that are not products (postage, fees, adjustments, vouchers), by code.
SELECT stock_code, MAX(description) AS description, COUNT(*) AS lines, ROUND(SUM(line_total), 2) AS line_total
FROM transactions
WHERE NOT is_product
GROUP BY stock_code
ORDER BY lines DESC, stock_code
