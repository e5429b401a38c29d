-- product_stats: how often each product (stock code) sells: lines, orders, customers, units, revenue.
SELECT
    stock_code,
    MAX(description) AS description,
    COUNT(*) AS lines,
    COUNT(DISTINCT invoice_no) AS orders,
    COUNT(DISTINCT customer_id) AS customers,
    SUM(quantity) AS units,
    ROUND(SUM(line_total), 2) AS revenue
FROM transactions
WHERE is_sale
GROUP BY stock_code
ORDER BY revenue DESC, stock_code
