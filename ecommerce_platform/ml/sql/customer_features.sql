-- customer_features: one row per known customer (anyone with a sale or a return), for segmentation.
-- Completed sales (is_sale) net of returns (is_return); recency measured from the day after the last
-- invoice in the data. Customers whose net spend is <= 0 (returns of purchases made before the data
-- starts, or returns only) are kept and flagged `has_net_spend = false`: the segmentation labels them
-- explicitly instead of clustering them.
WITH sale_invoices AS (
    SELECT customer_id, invoice_no, MIN(invoice_ts) AS invoice_ts, SUM(line_total) AS invoice_total,
           COUNT(*) AS lines
    FROM transactions
    WHERE is_sale AND NOT is_guest
    GROUP BY customer_id, invoice_no
),
sales AS (
    SELECT customer_id, COUNT(*) AS n_orders, SUM(invoice_total) AS gross_spend, SUM(lines) AS n_lines,
           MIN(invoice_ts) AS first_ts, MAX(invoice_ts) AS last_ts
    FROM sale_invoices
    GROUP BY customer_id
),
returns AS (
    SELECT customer_id, COUNT(DISTINCT invoice_no) AS return_invoices, -SUM(line_total) AS returns_value
    FROM transactions
    WHERE is_return AND NOT is_guest
    GROUP BY customer_id
),
countries AS (
    SELECT customer_id, MIN(country) AS country
    FROM transactions
    WHERE NOT is_guest
    GROUP BY customer_id
),
snapshot AS (
    SELECT MAX(invoice_ts) AS max_ts FROM transactions
),
customers AS (
    SELECT customer_id FROM sales
    UNION
    SELECT customer_id FROM returns
)
SELECT
    c.customer_id,
    n.country,
    CAST(COALESCE(s.n_orders, 0) AS BIGINT) AS frequency,
    CAST(ROUND(COALESCE(s.gross_spend, 0), 2) AS DOUBLE) AS gross_spend,
    CAST(ROUND(COALESCE(r.returns_value, 0), 2) AS DOUBLE) AS returns_value,
    CAST(COALESCE(r.return_invoices, 0) AS BIGINT) AS return_invoices,
    CAST(ROUND(COALESCE(s.gross_spend, 0) - COALESCE(r.returns_value, 0), 2) AS DOUBLE) AS monetary,
    CAST(CASE WHEN COALESCE(s.n_orders, 0) > 0
         THEN (COALESCE(s.gross_spend, 0) - COALESCE(r.returns_value, 0)) / s.n_orders END AS DOUBLE)
        AS avg_basket,
    CAST(CASE WHEN COALESCE(s.n_orders, 0) > 0 THEN CAST(s.n_lines AS DOUBLE) / s.n_orders END AS DOUBLE)
        AS avg_lines,
    CAST(date_diff('second', s.last_ts, p.max_ts) / 86400.0 + 1 AS DOUBLE) AS recency_days,
    CAST(date_diff('second', s.first_ts, p.max_ts) / 86400.0 + 1 AS DOUBLE) AS tenure_days,
    s.first_ts AS first_purchase_ts,
    s.last_ts AS last_purchase_ts,
    ROUND(COALESCE(s.gross_spend, 0) - COALESCE(r.returns_value, 0), 2) > 0 AS has_net_spend
FROM customers AS c
CROSS JOIN snapshot AS p
LEFT JOIN sales AS s ON s.customer_id = c.customer_id
LEFT JOIN returns AS r ON r.customer_id = c.customer_id
LEFT JOIN countries AS n ON n.customer_id = c.customer_id
