-- line_groups: the typed lines with exact duplicates folded together, the one relation the outputs
-- and the reconciliation are computed from (materialised once by the engine, read three times).
-- Valid lines carry no source text, so lines with the same values in all eight source columns
-- (after typing) form one group; `copies` counts how many input lines it stands for (copies - 1 of
-- them are duplicates). A rejected line keeps its source text, file and row number, so it is a
-- group of its own.
SELECT
    invoice_no_t, stock_code_t, description_t, quantity_num, price_num, invoice_ts_t, customer_id_t,
    country_t, reject_reason,
    invoice_no, stock_code, description, quantity, invoice_date, unit_price, customer_id, country,
    source_file, source_row,
    MIN(route) AS source,
    COUNT(*) AS copies
FROM ({typed_lines}) AS typed
GROUP BY
    invoice_no_t, stock_code_t, description_t, quantity_num, price_num, invoice_ts_t, customer_id_t,
    country_t, reject_reason,
    invoice_no, stock_code, description, quantity, invoice_date, unit_price, customer_id, country,
    source_file, source_row
