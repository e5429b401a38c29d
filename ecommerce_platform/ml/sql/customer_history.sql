-- customer_history: the same strictly-prior history as invoice_features.sql, for arbitrary
-- (request_id, customer_id, as-of timestamp) requests (the predict path). {requests} is a relation
-- with columns request_id, customer_id, as_of_ts. Kept equal to invoice_features.sql by a test.
WITH sale_invoices AS (
    SELECT invoice_no, customer_id, MIN(invoice_ts) AS invoice_ts, COUNT(*) AS basket_lines,
           SUM(line_total) AS invoice_total
    FROM transactions
    WHERE is_sale AND NOT is_guest AND customer_id IN (SELECT customer_id FROM {requests})
    GROUP BY invoice_no, customer_id
),
return_invoices AS (
    SELECT invoice_no, customer_id, MIN(invoice_ts) AS invoice_ts, -SUM(line_total) AS return_value
    FROM transactions
    WHERE is_return AND NOT is_guest AND customer_id IN (SELECT customer_id FROM {requests})
    GROUP BY invoice_no, customer_id
),
sales_before AS (
    SELECT r.request_id,
           COUNT(s.invoice_no) AS h_orders,
           SUM(s.invoice_total) AS h_spend,
           MAX(s.invoice_total) AS h_max_order,
           SUM(s.basket_lines) AS h_lines,
           MIN(s.invoice_ts) AS h_first_ts,
           MAX(s.invoice_ts) AS h_last_ts
    FROM {requests} AS r
    LEFT JOIN sale_invoices AS s
        ON s.customer_id = r.customer_id AND s.invoice_ts < r.as_of_ts
    GROUP BY r.request_id
),
returns_before AS (
    SELECT r.request_id,
           COUNT(x.invoice_no) AS h_return_invoices,
           SUM(x.return_value) AS h_return_value
    FROM {requests} AS r
    LEFT JOIN return_invoices AS x
        ON x.customer_id = r.customer_id AND x.invoice_ts < r.as_of_ts
    GROUP BY r.request_id
)
SELECT
    r.request_id,
    CAST(COALESCE(s.h_orders, 0) AS BIGINT) AS prior_orders,
    CAST(COALESCE(s.h_spend, 0) AS DOUBLE) AS prior_spend,
    CAST(CASE WHEN COALESCE(s.h_orders, 0) > 0 THEN s.h_spend / s.h_orders END AS DOUBLE) AS prior_avg_order,
    CAST(s.h_max_order AS DOUBLE) AS prior_max_order,
    CAST(CASE WHEN COALESCE(s.h_orders, 0) > 0 THEN CAST(s.h_lines AS DOUBLE) / s.h_orders END AS DOUBLE)
        AS prior_avg_lines,
    CAST(COALESCE(x.h_return_invoices, 0) AS BIGINT) AS prior_return_invoices,
    CAST(COALESCE(x.h_return_value, 0) AS DOUBLE) AS prior_return_value,
    CAST(date_diff('second', s.h_last_ts, r.as_of_ts) / 86400.0 AS DOUBLE) AS days_since_last_order,
    CAST(date_diff('second', s.h_first_ts, r.as_of_ts) / 86400.0 AS DOUBLE) AS tenure_days
FROM {requests} AS r
LEFT JOIN sales_before AS s ON s.request_id = r.request_id
LEFT JOIN returns_before AS x ON x.request_id = r.request_id
