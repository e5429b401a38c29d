-- sales_by_month: the money of each invoice month, summed from the analytics view daily_sales (exact
-- DECIMAL sums, so the months add up to the views' totals to the penny).
SELECT
    CAST(YEAR(sale_date) AS INTEGER) AS year,
    CAST(MONTH(sale_date) AS INTEGER) AS month,
    SUM(gross_sales) AS gross_sales,
    SUM(returns_value) AS returns_value,
    SUM(net_revenue) AS net_revenue
FROM daily_sales
GROUP BY YEAR(sale_date), MONTH(sale_date)
ORDER BY year, month
