-- price_counts: the distribution of unit price on sale lines, as (value, lines) pairs (exact, small).
SELECT unit_price, COUNT(*) AS lines
FROM transactions
WHERE is_sale
GROUP BY unit_price
ORDER BY unit_price
