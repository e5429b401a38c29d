-- quarantine: every rejected line with its source values (as text), the reason, and where it came from.
SELECT
    invoice_no, stock_code, description, quantity, invoice_date, unit_price, customer_id, country,
    reject_reason AS reason,
    source_file,
    source_row,
    source_line,
    detail,
    partition_month
FROM {typed_lines} AS typed
WHERE reject_reason IS NOT NULL
