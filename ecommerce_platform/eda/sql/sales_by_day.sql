-- sales_by_day: the analytics view daily_sales as the EDA layer shows it (sales over time). The EDA
-- layer does not compute revenue itself: its money figures are the views', to the penny.
SELECT
    sale_date,
    CAST(gross_sales AS DOUBLE) AS gross_sales,
    CAST(returns_value AS DOUBLE) AS returns_value,
    CAST(net_revenue AS DOUBLE) AS net_revenue,
    orders,
    customers
FROM daily_sales
ORDER BY sale_date
