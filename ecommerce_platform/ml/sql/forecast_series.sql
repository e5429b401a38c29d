-- forecast_series: daily net revenue (sales minus returns: the analytics views' definition) of the
-- whole business ('all', from daily_sales) and of the {top_countries} countries with the largest net
-- revenue (from daily_sales_by_country; 'Unspecified' is not a country), one row per series and day
-- with a sale or a return. The input of the sales forecast (ml/forecast.py).
WITH ranked AS (
    SELECT
        country,
        ROW_NUMBER() OVER (ORDER BY SUM(net_revenue) DESC, country) AS revenue_rank
    FROM daily_sales_by_country
    WHERE country <> 'Unspecified'
    GROUP BY country
)
SELECT 'all' AS series, sale_date, CAST(net_revenue AS DOUBLE) AS net_revenue
FROM daily_sales
UNION ALL
SELECT d.country AS series, d.sale_date, CAST(d.net_revenue AS DOUBLE) AS net_revenue
FROM daily_sales_by_country AS d
JOIN ranked AS r ON r.country = d.country
WHERE r.revenue_rank <= {top_countries}
