-- profile_sample: a deterministic pseudo-random sample of the clean table for profiling: line_id is
-- an MD5 hash, so ordering by it shuffles the rows the same way on every engine and every run.
SELECT invoice_no, stock_code, description, quantity, invoice_ts, unit_price, customer_id, country,
       line_total, is_cancellation, is_product, is_guest, is_sale, is_return
FROM transactions
ORDER BY line_id
LIMIT {limit}
