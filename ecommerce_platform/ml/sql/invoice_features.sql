-- invoice_features: one row per sale invoice of a known customer, with ONLY what is known before the
-- invoice's total: the customer's history strictly before the invoice (window frames that end one
-- second before the invoice's timestamp, so neither the invoice itself nor another invoice of the same
-- customer at the same minute is counted), its country, time of day and week, and its basket size in
-- lines. No quantity, price or amount of the invoice itself is a feature.
-- `invoice_total` is the LABEL SOURCE (the model's target is invoice_total >= threshold); it is never
-- a feature (see ml/features.py INVOICE_FEATURE_COLUMNS and the leakage tests).
WITH sale_invoices AS (
    SELECT
        invoice_no,
        customer_id,
        MIN(invoice_ts) AS invoice_ts,
        MIN(country) AS country,
        COUNT(*) AS basket_lines,
        SUM(line_total) AS invoice_total
    FROM transactions
    WHERE is_sale AND NOT is_guest
    GROUP BY invoice_no, customer_id
),
return_invoices AS (
    SELECT
        invoice_no,
        customer_id,
        MIN(invoice_ts) AS invoice_ts,
        -SUM(line_total) AS return_value
    FROM transactions
    WHERE is_return AND NOT is_guest
    GROUP BY invoice_no, customer_id
),
events AS (
    SELECT invoice_no, customer_id, invoice_ts, country, basket_lines, invoice_total,
           1 AS is_sale_event, CAST(0 AS DOUBLE) AS return_value
    FROM sale_invoices
    UNION ALL
    SELECT invoice_no, customer_id, invoice_ts, CAST(NULL AS VARCHAR) AS country, 0 AS basket_lines,
           CAST(0 AS DOUBLE) AS invoice_total, 0 AS is_sale_event, return_value
    FROM return_invoices
),
history AS (
    SELECT
        *,
        SUM(is_sale_event) OVER (PARTITION BY customer_id ORDER BY epoch(invoice_ts)
            RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS h_orders,
        SUM(invoice_total) OVER (PARTITION BY customer_id ORDER BY epoch(invoice_ts)
            RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS h_spend,
        MAX(CASE WHEN is_sale_event = 1 THEN invoice_total END) OVER (PARTITION BY customer_id
            ORDER BY epoch(invoice_ts) RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS h_max_order,
        SUM(basket_lines) OVER (PARTITION BY customer_id ORDER BY epoch(invoice_ts)
            RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS h_lines,
        SUM(1 - is_sale_event) OVER (PARTITION BY customer_id ORDER BY epoch(invoice_ts)
            RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS h_return_invoices,
        SUM(return_value) OVER (PARTITION BY customer_id ORDER BY epoch(invoice_ts)
            RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS h_return_value,
        MIN(CASE WHEN is_sale_event = 1 THEN invoice_ts END) OVER (PARTITION BY customer_id
            ORDER BY epoch(invoice_ts) RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS h_first_ts,
        MAX(CASE WHEN is_sale_event = 1 THEN invoice_ts END) OVER (PARTITION BY customer_id
            ORDER BY epoch(invoice_ts) RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS h_last_ts
    FROM events
)
SELECT
    invoice_no,
    customer_id,
    invoice_ts,
    CAST(YEAR(invoice_ts) * 100 + MONTH(invoice_ts) AS INTEGER) AS invoice_month,
    country,
    CAST(HOUR(invoice_ts) AS INTEGER) AS hour_of_day,
    CAST(ISODOW(invoice_ts) AS INTEGER) AS day_of_week,
    CAST(basket_lines AS BIGINT) AS basket_lines,
    CAST(COALESCE(h_orders, 0) AS BIGINT) AS prior_orders,
    CAST(COALESCE(h_spend, 0) AS DOUBLE) AS prior_spend,
    CAST(CASE WHEN COALESCE(h_orders, 0) > 0 THEN h_spend / h_orders END AS DOUBLE) AS prior_avg_order,
    CAST(h_max_order AS DOUBLE) AS prior_max_order,
    CAST(CASE WHEN COALESCE(h_orders, 0) > 0 THEN CAST(h_lines AS DOUBLE) / h_orders END AS DOUBLE)
        AS prior_avg_lines,
    CAST(COALESCE(h_return_invoices, 0) AS BIGINT) AS prior_return_invoices,
    CAST(COALESCE(h_return_value, 0) AS DOUBLE) AS prior_return_value,
    CAST(date_diff('second', h_last_ts, invoice_ts) / 86400.0 AS DOUBLE) AS days_since_last_order,
    CAST(date_diff('second', h_first_ts, invoice_ts) / 86400.0 AS DOUBLE) AS tenure_days,
    CAST(ROUND(invoice_total, 2) AS DOUBLE) AS invoice_total
FROM history
WHERE is_sale_event = 1
