-- sale_lines: the base of every analytics view. The one place where the sales definition is turned
-- into amounts: only sale and return lines, each with its sale and return value and units.
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
    invoice_no,
    invoice_ts,
    invoice_date,
    CAST(DATE_TRUNC('month', invoice_date) AS DATE) AS sale_month,
    stock_code,
    description,
    customer_id,
    is_guest,
    country,
    is_sale,
    is_return,
    CASE WHEN is_sale THEN quantity ELSE 0 END AS units_sold,
    CASE WHEN is_return THEN -quantity ELSE 0 END AS units_returned,
    CASE WHEN is_sale THEN CAST(line_total AS DECIMAL(18, 2)) ELSE CAST(0 AS DECIMAL(18, 2)) END AS sale_amount,
    CASE WHEN is_return THEN CAST(-line_total AS DECIMAL(18, 2)) ELSE CAST(0 AS DECIMAL(18, 2)) END AS return_amount
FROM transactions
WHERE is_sale OR is_return
