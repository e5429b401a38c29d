-- raw_sample: a systematic sample (every k-th record of each source) of the raw input as landed, from
-- the table raw_lines that the ingestion layer publishes (the canonical copies: the source columns as
-- text, before any rule), with quantity and unit price read as numbers so that their distributions
-- compare with the clean zone's. Unparsable numbers become NULL.
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
FROM raw_lines
WHERE MOD(source_row, {step}) = 0
ORDER BY source_file, source_row
LIMIT {limit}
