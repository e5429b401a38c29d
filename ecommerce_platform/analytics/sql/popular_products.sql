-- popular_products: one row per product (stock code) with a sale or a return, named by its
-- canonical description: the one written most often on its sale and return lines (ties: the
-- alphabetically first), chosen with ROW_NUMBER so it runs the same on DuckDB and Trino.
-- return_rate = units returned / units sold. revenue_rank orders products by net revenue.
-- THE definition of a sale (column is_sale of the clean table `transactions`, see
-- lake/sql/clean_transactions.sql and docs/analytics.md):
--   is_sale = NOT a cancellation AND quantity > 0 AND unit_price > 0 AND a real product
--   (a real product: not postage, fees, manual lines, discounts, samples, bad-debt adjustments or
--   gift vouchers). A return (is_return) is a cancelled product line with quantity < 0.
-- Money is GBP as DECIMAL(38,2): gross_sales = sum of sale lines, returns_value = value of returned
-- lines (positive), net_revenue = gross_sales - returns_value. orders = distinct invoices with a sale
-- line; avg_order_value = gross_sales / orders. Returns count where (day, country, product,
-- customer) the return invoice was raised. Guest checkouts (no customer id) are sales but not customers.
WITH names AS (
    SELECT
        stock_code,
        description,
        ROW_NUMBER() OVER (PARTITION BY stock_code ORDER BY COUNT(*) DESC, description) AS name_rank
    FROM sale_lines
    WHERE description IS NOT NULL
    GROUP BY stock_code, description
),
per_product AS (
    SELECT
        stock_code,
        SUM(sale_amount) AS gross_sales,
        SUM(return_amount) AS returns_value,
        CAST(SUM(units_sold) AS BIGINT) AS units_sold,
        CAST(SUM(units_returned) AS BIGINT) AS units_returned,
        COUNT(DISTINCT CASE WHEN is_sale THEN invoice_no END) AS orders,
        COUNT(DISTINCT CASE WHEN is_sale THEN customer_id END) AS customers
    FROM sale_lines
    GROUP BY stock_code
)
SELECT
    ROW_NUMBER() OVER (ORDER BY p.gross_sales - p.returns_value DESC, p.stock_code) AS revenue_rank,
    p.stock_code,
    COALESCE(n.description, '(no description)') AS description,
    p.units_sold,
    p.units_returned,
    p.gross_sales,
    p.returns_value,
    p.gross_sales - p.returns_value AS net_revenue,
    p.orders,
    p.customers,
    ROUND(CAST(p.units_returned AS DOUBLE) / NULLIF(p.units_sold, 0), 4) AS return_rate
FROM per_product AS p
LEFT JOIN names AS n ON n.stock_code = p.stock_code AND n.name_rank = 1
ORDER BY revenue_rank
