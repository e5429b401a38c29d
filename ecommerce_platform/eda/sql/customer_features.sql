-- customer_features: RFM-style features of every known customer (guest checkouts excluded), from the
-- analytics view sale_lines (the one place where the sales definition becomes amounts: sale_amount,
-- return_amount, units_sold). Recency and tenure are counted in days up to the last sale date in the
-- data. One row per customer with a sale; the EDA figures and the notebook use it.
-- Dialect: DuckDB, restricted to what transpiles to Trino (checked in the tests).
WITH ref AS (
    SELECT MAX(invoice_date) AS ref_date FROM sale_lines WHERE is_sale
),
sales AS (
    SELECT
        customer_id,
        COUNT(DISTINCT invoice_no) AS orders,
        SUM(sale_amount) AS total_spent,
        SUM(units_sold) AS units,
        COUNT(*) AS lines,
        COUNT(DISTINCT stock_code) AS distinct_products,
        MIN(invoice_date) AS first_purchase,
        MAX(invoice_date) AS last_purchase
    FROM sale_lines
    WHERE is_sale AND NOT is_guest
    GROUP BY customer_id
),
returns AS (
    SELECT customer_id, COUNT(*) AS return_lines, SUM(return_amount) AS returned_value
    FROM sale_lines
    WHERE is_return AND NOT is_guest
    GROUP BY customer_id
)
SELECT
    s.customer_id,
    s.orders,
    CAST(s.total_spent AS DOUBLE) AS total_spent,
    ROUND(CAST(s.total_spent AS DOUBLE) / s.orders, 2) AS avg_order_value,
    CAST(s.units AS DOUBLE) / s.orders AS avg_basket_units,
    CAST(s.lines AS DOUBLE) / s.orders AS avg_basket_lines,
    CAST(s.units AS BIGINT) AS units,
    s.distinct_products,
    DATE_DIFF('day', s.last_purchase, r.ref_date) AS recency_days,
    DATE_DIFF('day', s.first_purchase, r.ref_date) AS tenure_days,
    COALESCE(ret.return_lines, 0) AS return_lines,
    CAST(COALESCE(ret.returned_value, 0) AS DOUBLE) AS returned_value
FROM sales AS s
CROSS JOIN ref AS r
LEFT JOIN returns AS ret ON ret.customer_id = s.customer_id
ORDER BY s.customer_id
