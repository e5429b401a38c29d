-- quantity_counts: the distribution of quantity on sale lines, as (value, lines) pairs (exact, small).
SELECT quantity, COUNT(*) AS lines
FROM transactions
WHERE is_sale
GROUP BY quantity
ORDER BY quantity
