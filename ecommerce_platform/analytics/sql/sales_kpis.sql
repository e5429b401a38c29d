-- sales_kpis: one row, the headline figures of the whole period (the dashboard's tiles).
-- countries counts the countries with a sale; 'Unspecified' (what the clean zone writes when a line
-- has no country) is not a country and is not counted: its sales are in every money figure.
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
    MIN(CASE WHEN is_sale THEN invoice_date END) AS first_day,
    MAX(CASE WHEN is_sale THEN invoice_date END) AS last_day,
    COUNT(DISTINCT CASE WHEN is_sale THEN invoice_date END) AS trading_days,
    SUM(sale_amount) AS gross_sales,
    SUM(return_amount) AS returns_value,
    SUM(sale_amount) - SUM(return_amount) AS net_revenue,
    COUNT(DISTINCT CASE WHEN is_sale THEN invoice_no END) AS orders,
    COUNT(DISTINCT CASE WHEN is_sale THEN customer_id END) AS customers,
    CAST(SUM(units_sold) AS BIGINT) AS units_sold,
    COUNT(DISTINCT CASE WHEN is_sale THEN stock_code END) AS products,
    COUNT(DISTINCT CASE WHEN is_sale AND country <> 'Unspecified' THEN country END) AS countries,
    ROUND(CAST(SUM(sale_amount) AS DOUBLE)
          / NULLIF(COUNT(DISTINCT CASE WHEN is_sale THEN invoice_no END), 0), 2) AS avg_order_value
FROM sale_lines
