-- user_item_interactions: units bought per (customer, product, invoice), completed sales only, with
-- the invoice's position in the customer's history (1 = the customer's last invoice) so that a
-- time-based holdout (each customer's last invoice) is a filter, not a second query.
WITH lines AS (
    SELECT customer_id, stock_code, invoice_no, MIN(invoice_ts) AS invoice_ts, SUM(quantity) AS quantity
    FROM transactions
    WHERE is_sale AND NOT is_guest
    GROUP BY customer_id, stock_code, invoice_no
),
invoices AS (
    SELECT customer_id, invoice_no, MIN(invoice_ts) AS invoice_ts
    FROM lines
    GROUP BY customer_id, invoice_no
),
ranked AS (
    SELECT
        customer_id,
        invoice_no,
        ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY invoice_ts DESC, invoice_no DESC)
            AS invoice_rank_desc,
        COUNT(*) OVER (PARTITION BY customer_id) AS customer_invoices
    FROM invoices
)
SELECT
    l.customer_id,
    l.stock_code,
    l.invoice_no,
    l.invoice_ts,
    CAST(l.quantity AS BIGINT) AS quantity,
    CAST(r.invoice_rank_desc AS BIGINT) AS invoice_rank_desc,
    CAST(r.customer_invoices AS BIGINT) AS customer_invoices
FROM lines AS l
JOIN ranked AS r ON r.customer_id = l.customer_id AND r.invoice_no = l.invoice_no
