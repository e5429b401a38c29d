-- raw_sample: a systematic sample (every k-th source row) of the raw input as landed: the canonical
-- source columns as text (the ingestion layer's source selects, substituted for the sources
-- placeholder last, since they contain braces themselves), with quantity and unit price read as
-- numbers so their distributions compare with the clean zone's. Unparsable numbers become NULL.
SELECT
    invoice_no,
    stock_code,
    description,
    TRY_CAST(TRIM(quantity) AS DOUBLE) AS quantity,
    invoice_date,
    TRY_CAST(TRIM(unit_price) AS DOUBLE) AS unit_price,
    customer_id,
    country,
    route
FROM ({sources}) AS src
WHERE MOD(source_row, {step}) = 0
ORDER BY source_file, source_row
LIMIT {limit}
