-- profile_sample: a deterministic pseudo-random sample of the clean table for profiling: the rows are
-- ordered by an MD5 of their identity (schema.CLEAN_KEY; unit_price apart, as engines print doubles
-- differently), so the shuffle is the same on every engine and every run.
SELECT invoice_no, stock_code, description, quantity, invoice_ts, unit_price, customer_id, country,
       line_total, is_cancellation, is_product, is_guest, is_sale, is_return
FROM transactions
ORDER BY
    MD5(CONCAT_WS('|', invoice_no, stock_code, COALESCE(description, ''), CAST(quantity AS VARCHAR),
                  CAST(invoice_ts AS VARCHAR), COALESCE(customer_id, ''), country)),
    unit_price
LIMIT {limit}
