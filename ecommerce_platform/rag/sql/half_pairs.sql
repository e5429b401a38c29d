-- How many invoices each unordered pair of products shares (each pair once: p1 < p2).
SELECT a.prod AS p1, b.prod AS p2, count(*) AS together
FROM basket_ids AS a
JOIN basket_ids AS b ON a.inv = b.inv AND a.prod < b.prod
GROUP BY a.prod, b.prod
