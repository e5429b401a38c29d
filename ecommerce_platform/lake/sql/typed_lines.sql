-- typed_lines: every input line (batch files and stream records), typed, with the reason it is
-- rejected (NULL when it is valid). The sources placeholder is a UNION ALL of the source selects, each giving the
-- canonical text columns plus source_file, source_row, route and date_order ('dmy' or 'mdy').
-- The source text (and where the line came from) is carried only for rejected lines, the ones the
-- quarantine shows; a valid line is fully described by its typed values.
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
            -- the common case first, cheaper than the pattern below it: a cast, accepted only when the
            -- value prints back as the same 'YYYY-MM-DD HH:MM:SS' text (then it is what the pattern reads)
            CASE WHEN LENGTH(TRIM(invoice_date)) = 19
                      AND CAST(TRY_CAST(TRIM(invoice_date) AS TIMESTAMP) AS VARCHAR) = TRIM(invoice_date)
                THEN TRY_CAST(TRIM(invoice_date) AS TIMESTAMP)
            END,
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
        -- a numeric id read as text ('17850.0') loses its '.0' ending; the common case without a regex
        NULLIF(
            CASE WHEN TRIM(customer_id) LIKE '%.0'
                THEN SUBSTRING(TRIM(customer_id), 1, LENGTH(TRIM(customer_id)) - 2)
                ELSE REGEXP_REPLACE(TRIM(customer_id), '\.0+$', '')
            END, '') AS customer_id_t,
        COALESCE(NULLIF(TRIM(country), ''), 'Unspecified') AS country_t,
        src.*
    FROM src
),
checked AS (
    SELECT
        *,
        CASE
            -- the common case first: one cheap test passes every valid line
            WHEN invoice_no_t IS NOT NULL AND stock_code_t IS NOT NULL
                 AND quantity_num BETWEEN -1e9 AND 1e9 AND quantity_num = ROUND(quantity_num)
                 AND price_num BETWEEN 0 AND 1e9
                 AND invoice_ts_t BETWEEN TIMESTAMP '1990-01-01 00:00:00' AND TIMESTAMP '2100-01-01 00:00:00'
                THEN NULL
            -- otherwise the first rule the line breaks
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
            ELSE 'invoice_date out of range'
        END AS reject_reason
    FROM norm
)
SELECT
    invoice_no_t,
    stock_code_t,
    description_t,
    quantity_num,
    price_num,
    invoice_ts_t,
    customer_id_t,
    country_t,
    route,
    reject_reason,
    CASE WHEN reject_reason IS NOT NULL THEN invoice_no END AS invoice_no,
    CASE WHEN reject_reason IS NOT NULL THEN stock_code END AS stock_code,
    CASE WHEN reject_reason IS NOT NULL THEN description END AS description,
    CASE WHEN reject_reason IS NOT NULL THEN quantity END AS quantity,
    CASE WHEN reject_reason IS NOT NULL THEN invoice_date END AS invoice_date,
    CASE WHEN reject_reason IS NOT NULL THEN unit_price END AS unit_price,
    CASE WHEN reject_reason IS NOT NULL THEN customer_id END AS customer_id,
    CASE WHEN reject_reason IS NOT NULL THEN country END AS country,
    CASE WHEN reject_reason IS NOT NULL THEN source_file END AS source_file,
    CASE WHEN reject_reason IS NOT NULL THEN source_row END AS source_row
FROM checked
