-- daily_sales_by_country: one row per calendar day and customer country with a sale or a return.
-- Lines without a country are grouped under 'Unspecified' (the clean zone's placeholder, not a
-- country): kept, so that the rows of a day add up to the day's total.
-- THE definition of a sale (column is_sale of the clean table `transactions`, see
-- lake/sql/clean_transactions.sql and docs/analytics.md):
--   is_sale = NOT a cancellation AND quantity > 0 AND unit_price > 0 AND a real product
--   (a real product: not postage, fees, manual lines, discounts, samples, bad-debt adjustments or
--   gift vouchers). A return (is_return) is a cancelled product line with quantity < 0.
-- Money is GBP as DECIMAL(38,2): gross_sales = sum of sale lines, returns_value = value of returned
-- lines (positive), net_revenue = gross_sales - returns_value. orders = distinct invoices with a sale
-- line; avg_order_value = gross_sales / orders. Returns count where (day, country, product,
-- customer) the return invoice was raised. Guest checkouts (no customer id) are sales but not customers.
SELECT
    sale_date,
    country,
    gross_sales,
    returns_value,
    gross_sales - returns_value AS net_revenue,
    orders,
    units_sold,
    units_returned,
    customers,
    ROUND(CAST(gross_sales AS DOUBLE) / NULLIF(orders, 0), 2) AS avg_order_value
FROM (
    SELECT
        invoice_date AS sale_date,
        country,
        SUM(sale_amount) AS gross_sales,
        SUM(return_amount) AS returns_value,
        COUNT(DISTINCT CASE WHEN is_sale THEN invoice_no END) AS orders,
        CAST(SUM(units_sold) AS BIGINT) AS units_sold,
        CAST(SUM(units_returned) AS BIGINT) AS units_returned,
        COUNT(DISTINCT CASE WHEN is_sale THEN customer_id END) AS customers
    FROM sale_lines
    GROUP BY invoice_date, country
) AS per_day_country
ORDER BY sale_date, country
