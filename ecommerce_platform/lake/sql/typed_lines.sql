-- typed_lines: every input line (batch files and stream records), typed, with the reason it is
-- rejected (NULL when it is valid). {sources} is a UNION ALL of the source selects, each giving the
-- canonical text columns plus source_file, source_row, route and date_order ('dmy' or 'mdy').
-- Dialect: DuckDB, restricted to what transpiles to Trino (checked in the tests).
WITH src AS (
    {sources}
),
norm AS (
    SELECT
        NULLIF(UPPER(TRIM(invoice_no)), '') AS invoice_no_t,
        NULLIF(UPPER(TRIM(stock_code)), '') AS stock_code_t,
        NULLIF(TRIM(description), '') AS description_t,
        TRY_CAST(TRIM(quantity) AS DOUBLE) AS quantity_num,
        TRY_CAST(TRIM(unit_price) AS DOUBLE) AS price_num,
        COALESCE(
            TRY_STRPTIME(TRIM(invoice_date), '%Y-%m-%d %H:%M:%S'),
            TRY_STRPTIME(TRIM(invoice_date), '%Y-%m-%dT%H:%M:%S'),
            TRY_STRPTIME(TRIM(invoice_date), '%Y-%m-%d %H:%M'),
            TRY_STRPTIME(TRIM(invoice_date), '%Y-%m-%d'),
            CASE WHEN date_order = 'mdy'
                THEN COALESCE(TRY_STRPTIME(TRIM(invoice_date), '%m/%d/%Y %H:%M'),
                              TRY_STRPTIME(TRIM(invoice_date), '%m/%d/%Y %H:%M:%S'),
                              TRY_STRPTIME(TRIM(invoice_date), '%m/%d/%Y'))
                ELSE COALESCE(TRY_STRPTIME(TRIM(invoice_date), '%d/%m/%Y %H:%M'),
                              TRY_STRPTIME(TRIM(invoice_date), '%d/%m/%Y %H:%M:%S'),
                              TRY_STRPTIME(TRIM(invoice_date), '%d/%m/%Y'))
            END
        ) AS invoice_ts_t,
        NULLIF(REGEXP_REPLACE(TRIM(customer_id), '\.0+$', ''), '') AS customer_id_t,
        COALESCE(NULLIF(TRIM(country), ''), 'Unspecified') AS country_t,
        src.*
    FROM src
)
SELECT
    *,
    CASE
        WHEN invoice_no_t IS NULL THEN 'missing invoice_no'
        WHEN stock_code_t IS NULL THEN 'missing stock_code'
        WHEN quantity IS NULL OR TRIM(quantity) = '' THEN 'missing quantity'
        WHEN NOT (quantity_num BETWEEN -1e9 AND 1e9) OR quantity_num IS NULL THEN 'unparsable quantity'
        WHEN quantity_num <> ROUND(quantity_num) THEN 'non-integer quantity'
        WHEN unit_price IS NULL OR TRIM(unit_price) = '' THEN 'missing unit_price'
        WHEN NOT (price_num BETWEEN -1e9 AND 1e9) OR price_num IS NULL THEN 'unparsable unit_price'
        WHEN price_num < 0 THEN 'negative unit_price'
        WHEN invoice_date IS NULL OR TRIM(invoice_date) = '' THEN 'missing invoice_date'
        WHEN invoice_ts_t IS NULL THEN 'unparsable invoice_date'
        WHEN invoice_ts_t < TIMESTAMP '1990-01-01 00:00:00' OR invoice_ts_t > TIMESTAMP '2100-01-01 00:00:00'
            THEN 'invoice_date out of range'
        ELSE NULL
    END AS reject_reason
FROM norm
