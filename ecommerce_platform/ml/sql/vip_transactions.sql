-- vip_transactions: the sale lines (is_sale, THE definition of a sale) of the customers whose segment
-- is {segment} in `customer_segments`, with the customer's segment and net spend.
-- Rendered by sql_dialect.render(segment=...): the segment name is a literal.
SELECT
    t.invoice_no,
    t.stock_code,
    t.description,
    t.quantity,
    t.invoice_ts,
    t.unit_price,
    t.line_total,
    t.customer_id,
    t.country,
    s.segment,
    s.monetary AS customer_net_spend
FROM transactions AS t
JOIN customer_segments AS s ON s.customer_id = t.customer_id
WHERE s.segment = {segment} AND t.is_sale
