-- daily_sales: revenue, orders, customers and returns per invoice date (sales = `is_sale`).
SELECT
    invoice_date,
    ROUND(COALESCE(SUM(line_total) FILTER (WHERE is_sale), 0), 2) AS revenue,
    COUNT(DISTINCT invoice_no) FILTER (WHERE is_sale) AS orders,
    COUNT(DISTINCT customer_id) FILTER (WHERE is_sale) AS customers,
    ROUND(COALESCE(-SUM(line_total) FILTER (WHERE is_return), 0), 2) AS returned_value
FROM transactions
GROUP BY invoice_date
ORDER BY invoice_date
