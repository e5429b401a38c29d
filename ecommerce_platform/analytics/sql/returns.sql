-- returns: one row per calendar month: returned product lines (cancelled invoices, quantity < 0),
-- their value and units, and the return rate (returns_value / gross_sales of the month).
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
    sale_month,
    return_invoices,
    return_lines,
    units_returned,
    returns_value,
    gross_sales,
    ROUND(CAST(returns_value AS DOUBLE) / NULLIF(CAST(gross_sales AS DOUBLE), 0), 4) AS return_rate,
    customers_returning
FROM (
    SELECT
        sale_month,
        COUNT(DISTINCT CASE WHEN is_return THEN invoice_no END) AS return_invoices,
        CAST(SUM(CASE WHEN is_return THEN 1 ELSE 0 END) AS BIGINT) AS return_lines,
        CAST(SUM(units_returned) AS BIGINT) AS units_returned,
        SUM(return_amount) AS returns_value,
        SUM(sale_amount) AS gross_sales,
        COUNT(DISTINCT CASE WHEN is_return THEN customer_id END) AS customers_returning
    FROM sale_lines
    GROUP BY sale_month
) AS per_month
ORDER BY sale_month
