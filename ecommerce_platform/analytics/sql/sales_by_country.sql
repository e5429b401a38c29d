-- sales_by_country: one row per customer country; share_of_net_revenue is the row's fraction (0-1) of
-- total net revenue. 'Unspecified' (what the clean zone writes when a line has no country) is not a
-- country: its row is kept, so the rows still add up to the total, but it is not ranked (revenue_rank
-- is NULL, listed last); revenue_rank ranks the real countries only, 1 = the highest net revenue.
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
    CASE WHEN country = 'Unspecified' THEN NULL
         ELSE ROW_NUMBER() OVER (PARTITION BY country = 'Unspecified'
                                 ORDER BY gross_sales - returns_value DESC, country)
    END AS revenue_rank,
    country,
    gross_sales,
    returns_value,
    gross_sales - returns_value AS net_revenue,
    orders,
    customers,
    units_sold,
    ROUND(CAST(gross_sales AS DOUBLE) / NULLIF(orders, 0), 2) AS avg_order_value,
    ROUND(CAST(gross_sales - returns_value AS DOUBLE)
          / NULLIF(SUM(CAST(gross_sales - returns_value AS DOUBLE)) OVER (), 0), 6) AS share_of_net_revenue
FROM (
    SELECT
        country,
        SUM(sale_amount) AS gross_sales,
        SUM(return_amount) AS returns_value,
        COUNT(DISTINCT CASE WHEN is_sale THEN invoice_no END) AS orders,
        COUNT(DISTINCT CASE WHEN is_sale THEN customer_id END) AS customers,
        CAST(SUM(units_sold) AS BIGINT) AS units_sold
    FROM sale_lines
    GROUP BY country
) AS per_country
ORDER BY revenue_rank NULLS LAST, country
