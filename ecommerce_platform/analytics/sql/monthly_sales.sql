-- monthly_sales: one row per calendar month (sale_month = its first day). new_customers counts the
-- customers whose first sale in the data falls in the month (everyone is new in the first month).
-- trading_days is the number of days with a sale: the last month of the data may be partial.
-- THE definition of a sale (column is_sale of the clean table `transactions`, see
-- lake/sql/clean_transactions.sql and docs/analytics.md):
--   is_sale = NOT a cancellation AND quantity > 0 AND unit_price > 0 AND a real product
--   (a real product: not postage, fees, manual lines, discounts, samples, bad-debt adjustments or
--   gift vouchers). A return (is_return) is a cancelled product line with quantity < 0.
-- Money is GBP as DECIMAL(38,2): gross_sales = sum of sale lines, returns_value = value of returned
-- lines (positive), net_revenue = gross_sales - returns_value. orders = distinct invoices with a sale
-- line; avg_order_value = gross_sales / orders. Returns count where (day, country, product,
-- customer) the return invoice was raised. Guest checkouts (no customer id) are sales but not customers.
WITH per_month AS (
    SELECT
        sale_month,
        SUM(sale_amount) AS gross_sales,
        SUM(return_amount) AS returns_value,
        COUNT(DISTINCT CASE WHEN is_sale THEN invoice_no END) AS orders,
        CAST(SUM(units_sold) AS BIGINT) AS units_sold,
        COUNT(DISTINCT CASE WHEN is_sale THEN customer_id END) AS customers,
        COUNT(DISTINCT CASE WHEN is_sale THEN invoice_date END) AS trading_days,
        MIN(invoice_date) AS first_day,
        MAX(invoice_date) AS last_day
    FROM sale_lines
    GROUP BY sale_month
),
first_sale AS (
    SELECT customer_id, MIN(sale_month) AS first_month
    FROM sale_lines
    WHERE is_sale AND customer_id IS NOT NULL
    GROUP BY customer_id
),
newcomers AS (
    SELECT first_month, COUNT(*) AS new_customers FROM first_sale GROUP BY first_month
)
SELECT
    m.sale_month,
    m.first_day,
    m.last_day,
    m.trading_days,
    m.gross_sales,
    m.returns_value,
    m.gross_sales - m.returns_value AS net_revenue,
    m.orders,
    m.units_sold,
    m.customers,
    COALESCE(n.new_customers, 0) AS new_customers,
    ROUND(CAST(m.gross_sales AS DOUBLE) / NULLIF(m.orders, 0), 2) AS avg_order_value
FROM per_month AS m
LEFT JOIN newcomers AS n ON n.first_month = m.sale_month
ORDER BY m.sale_month
