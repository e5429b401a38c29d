-- typed_lines: every input line of the invoice months being cleaned (batch files and stream records),
-- typed, with the reason it is rejected (NULL when it is valid): the first rule of lake/rules.py it
-- breaks. The lines come from the canonical copies the ingestion layer publishes (the sources
-- placeholder: the copies' rows of these months, in the copy's shape: the source text, quantity_num,
-- price_num and invoice_ts already read, latest_valid_ts, partition_month, where each line came from).
-- Bounds come in as parameters (earliest_ts, max_abs_quantity, max_unit_price), and the placeholder
-- country of a line without one (unspecified_country, schema.py).
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
        invoice_ts AS invoice_ts_t,
        -- a numeric id read as text ('17850.0') loses its '.0' ending; the common case without a regex
        NULLIF(
            CASE WHEN TRIM(customer_id) LIKE '%.0'
                THEN SUBSTRING(TRIM(customer_id), 1, LENGTH(TRIM(customer_id)) - 2)
                ELSE REGEXP_REPLACE(TRIM(customer_id), '\.0+$', '')
            END, '') AS customer_id_t,
        COALESCE(NULLIF(TRIM(country), ''), {unspecified_country}) AS country_t,
        src.*
    FROM src
),
checked AS (
    SELECT
        *,
        CASE
            -- the common case first: one cheap test passes every valid line
            WHEN malformed IS NULL AND invoice_no_t IS NOT NULL AND stock_code_t IS NOT NULL
                 AND quantity_num BETWEEN -{max_abs_quantity} AND {max_abs_quantity}
                 AND quantity_num = ROUND(quantity_num)
                 AND price_num BETWEEN 0 AND {max_unit_price}
                 AND invoice_ts_t BETWEEN {earliest_ts} AND latest_valid_ts
                THEN NULL
            -- otherwise the first rule the line breaks
            WHEN malformed IS NOT NULL THEN malformed
            WHEN invoice_no_t IS NULL THEN 'missing invoice_no'
            WHEN stock_code_t IS NULL THEN 'missing stock_code'
            WHEN quantity IS NULL OR TRIM(quantity) = '' THEN 'missing quantity'
            WHEN NOT (quantity_num BETWEEN -{max_abs_quantity} AND {max_abs_quantity}) OR quantity_num IS NULL
                THEN 'unparsable quantity'
            WHEN quantity_num <> ROUND(quantity_num) THEN 'non-integer quantity'
            WHEN unit_price IS NULL OR TRIM(unit_price) = '' THEN 'missing unit_price'
            WHEN NOT (price_num BETWEEN -{max_unit_price} AND {max_unit_price}) OR price_num IS NULL
                THEN 'unparsable unit_price'
            WHEN price_num < 0 THEN 'negative unit_price'
            WHEN invoice_date IS NULL OR TRIM(invoice_date) = '' THEN 'missing invoice_date'
            WHEN invoice_ts_t IS NULL THEN 'unparsable invoice_date'
            WHEN invoice_ts_t < {earliest_ts} THEN 'invoice_date before earliest date'
            ELSE 'invoice_date after ingest'
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
    partition_month,
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
    CASE WHEN reject_reason IS NOT NULL THEN source_row END AS source_row,
    CASE WHEN reject_reason IS NOT NULL THEN source_line END AS source_line,
    CASE WHEN reject_reason IS NOT NULL THEN malformed_detail END AS detail
FROM checked
