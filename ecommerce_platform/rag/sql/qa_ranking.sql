-- qa_ranking: the rankings of `ecommerce ask` (top or bottom N products, customers, countries, months or
-- days) over the analytics view `sale_lines` (THE sales definition turned into amounts: sales are
-- is_sale lines, returns is_return lines counted when the return was raised, money in GBP).
-- Filled by sql_dialect.render: {lines_filter} and {having} are conditions the answerer composes from a
-- fixed set (every value taken from a question is a literal inside them), {key} and {order_by} are
-- chosen from fixed lists, {limit} is a number.
-- net_units = units sold - units returned; net_revenue = gross sales - returns (as sales_kpis);
-- orders = distinct invoices with a sale line; customers = distinct known customers (guests excluded).
-- ranked_count: how many rows the ranking has (the answer says how many more are not listed);
-- same_value_count: how many rows share a row's ranking value (ties at the cut are reported).
WITH lines AS (
    SELECT *
    FROM sale_lines
    WHERE {lines_filter}
),
grouped AS (
    SELECT
        {key} AS key,
        CAST(SUM(units_sold) AS BIGINT) AS units_sold,
        CAST(SUM(units_returned) AS BIGINT) AS units_returned,
        CAST(SUM(units_sold) - SUM(units_returned) AS BIGINT) AS net_units,
        CAST(SUM(sale_amount) AS DOUBLE) AS gross_sales,
        CAST(SUM(return_amount) AS DOUBLE) AS returns_value,
        CAST(SUM(sale_amount) - SUM(return_amount) AS DOUBLE) AS net_revenue,
        COUNT(DISTINCT CASE WHEN is_sale THEN invoice_no END) AS orders,
        COUNT(DISTINCT CASE WHEN is_return THEN invoice_no END) AS return_invoices,
        COUNT(DISTINCT CASE WHEN is_sale THEN customer_id END) AS customers
    FROM lines
    GROUP BY {key}
),
measured AS (
    SELECT
        *,
        ROUND(CAST(units_returned AS DOUBLE) / NULLIF(units_sold, 0), 4) AS unit_return_rate,
        ROUND(returns_value / NULLIF(gross_sales, 0), 4) AS value_return_rate,
        ROUND(gross_sales / NULLIF(units_sold, 0), 2) AS avg_price,
        ROUND(gross_sales / NULLIF(orders, 0), 2) AS avg_order_value
    FROM grouped
),
kept AS (
    SELECT * FROM measured WHERE {having}
)
SELECT
    *,
    COUNT(*) OVER () AS ranked_count,
    COUNT(*) OVER (PARTITION BY {rank_value}) AS same_value_count
FROM kept
ORDER BY {order_by}
LIMIT {limit}
