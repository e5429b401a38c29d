-- line_groups: the valid typed lines with exact duplicates folded together. Lines with the same values
-- in all eight source columns (after typing) form one group; `copies` counts how many input lines it
-- stands for (copies - 1 of them are duplicates), `source` is the first route it arrived by.
-- Rejected lines are not grouped: each one goes to the quarantine as it is (quarantine.sql).
SELECT
    invoice_no_t, stock_code_t, description_t, quantity_num, price_num, invoice_ts_t, customer_id_t,
    country_t,
    MIN(route) AS source,
    COUNT(*) AS copies
FROM {typed_lines} AS typed
WHERE reject_reason IS NULL
GROUP BY
    invoice_no_t, stock_code_t, description_t, quantity_num, price_num, invoice_ts_t, customer_id_t,
    country_t
