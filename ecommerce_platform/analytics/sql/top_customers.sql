-- top_customers: every identified customer (guest checkouts excluded) ranked by net revenue; no
-- LIMIT, take the top N when querying. country is the customer's main country: the real country with
-- the most sale and return lines (ties: alphabetical); 'Unspecified' (what the clean zone writes when a
-- line has no country) is not a country and is only given when the customer has no line with one.
-- first/last_purchase are timestamps of the first and last sale.
-- THE definition of a sale (column is_sale of the clean table `transactions`, see
-- lake/sql/clean_transactions.sql and docs/analytics.md):
--   is_sale = NOT a cancellation AND quantity > 0 AND unit_price > 0 AND a real product
--   (a real product: not postage, fees, manual lines, discounts, samples, bad-debt adjustments or
--   gift vouchers). A return (is_return) is a cancelled product line with quantity < 0.
-- Money is GBP as DECIMAL(38,2): gross_sales = sum of sale lines, returns_value = value of returned
-- lines (positive), net_revenue = gross_sales - returns_value. orders = distinct invoices with a sale
-- line; avg_order_value = gross_sales / orders. Returns count where (day, country, product,
-- customer) the return invoice was raised. Guest checkouts (no customer id) are sales but not customers.
WITH countries AS (
    SELECT
        customer_id,
        country,
        ROW_NUMBER() OVER (PARTITION BY customer_id
                           ORDER BY CASE WHEN country = 'Unspecified' THEN 1 ELSE 0 END, COUNT(*) DESC, country)
            AS country_rank
    FROM sale_lines
    WHERE NOT is_guest
    GROUP BY customer_id, country
),
per_customer AS (
    SELECT
        customer_id,
        SUM(sale_amount) AS gross_sales,
        SUM(return_amount) AS returns_value,
        COUNT(DISTINCT CASE WHEN is_sale THEN invoice_no END) AS orders,
        CAST(SUM(units_sold) AS BIGINT) AS units_sold,
        COUNT(DISTINCT CASE WHEN is_sale THEN stock_code END) AS products,
        MIN(CASE WHEN is_sale THEN invoice_ts END) AS first_purchase,
        MAX(CASE WHEN is_sale THEN invoice_ts END) AS last_purchase
    FROM sale_lines
    WHERE NOT is_guest
    GROUP BY customer_id
)
SELECT
    ROW_NUMBER() OVER (ORDER BY c.gross_sales - c.returns_value DESC, c.customer_id) AS revenue_rank,
    c.customer_id,
    k.country,
    c.gross_sales,
    c.returns_value,
    c.gross_sales - c.returns_value AS net_revenue,
    c.orders,
    c.units_sold,
    c.products,
    c.first_purchase,
    c.last_purchase,
    ROUND(CAST(c.gross_sales AS DOUBLE) / NULLIF(c.orders, 0), 2) AS avg_order_value
FROM per_customer AS c
LEFT JOIN countries AS k ON k.customer_id = c.customer_id AND k.country_rank = 1
ORDER BY revenue_rank
