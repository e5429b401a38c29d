-- canonical_copy: the reader's copy of a batch (or of a stream day) in the one shape every engine reads:
-- the eight source columns as text (what the quarantine shows), the numbers and the invoice time read
-- once here (quantity_num, price_num, invoice_ts: NULL when they cannot be read), and the invoice month
-- each line belongs to. Input: the source relation in the reader's shape (source_row, source_line,
-- the eight canonical source columns as the source had them, malformed, malformed_detail). Parameters:
-- source_file (the landed object each line comes from: a literal for a batch, a column for a stream
-- day), route ('batch' or 'stream'), quantity_num and price_num (how the numbers are read: a cast of a
-- numeric source column, no text round trip; a parse of a text one), invoice_text (the date as text),
-- date_order ('dmy' or 'mdy': how 'a/b/yyyy' dates are read, detected from the file), earliest_ts and
-- latest_valid_ts (the plausible window: the earliest date setting, the ingest time plus the tolerance).
-- partition_month is 'YYYY-MM' for a line dated inside the window, 'undated' otherwise; the clean
-- transform judges every line again (lake/rules.py), this only routes it to its month.
-- Dialect: DuckDB (the landing runs it locally, whatever the deployment).
WITH src AS (
    SELECT *, {invoice_text} AS d FROM {source}
),
dated AS (
    SELECT
        *,
        COALESCE(
            -- the common case first, cheaper than the patterns below it: a cast, accepted only when the
            -- value prints back as the same 'YYYY-MM-DD HH:MM:SS' text
            CASE WHEN LENGTH(d) = 19 AND CAST(TRY_CAST(d AS TIMESTAMP) AS VARCHAR) = d
                THEN TRY_CAST(d AS TIMESTAMP)
            END,
            TRY_STRPTIME(d, '%Y-%m-%d %H:%M:%S'),
            TRY_STRPTIME(d, '%Y-%m-%dT%H:%M:%S'),
            TRY_STRPTIME(d, '%Y-%m-%d %H:%M'),
            TRY_STRPTIME(d, '%Y-%m-%d'),
            CASE WHEN {date_order} = 'mdy'
                THEN COALESCE(TRY_STRPTIME(d, '%m/%d/%Y %H:%M'), TRY_STRPTIME(d, '%m/%d/%Y %H:%M:%S'),
                              TRY_STRPTIME(d, '%m/%d/%Y'))
                ELSE COALESCE(TRY_STRPTIME(d, '%d/%m/%Y %H:%M'), TRY_STRPTIME(d, '%d/%m/%Y %H:%M:%S'),
                              TRY_STRPTIME(d, '%d/%m/%Y'))
            END
        ) AS invoice_ts
    FROM src
)
SELECT
    {source_file} AS source_file, {route} AS route, source_row, source_line,
    CAST(invoice_no AS VARCHAR) AS invoice_no, CAST(stock_code AS VARCHAR) AS stock_code,
    CAST(description AS VARCHAR) AS description, CAST(quantity AS VARCHAR) AS quantity,
    CAST(invoice_date AS VARCHAR) AS invoice_date, CAST(unit_price AS VARCHAR) AS unit_price,
    CAST(customer_id AS VARCHAR) AS customer_id, CAST(country AS VARCHAR) AS country,
    malformed, malformed_detail,
    {quantity_num} AS quantity_num,
    {price_num} AS price_num,
    invoice_ts,
    {latest_valid_ts} AS latest_valid_ts,
    CASE WHEN invoice_ts BETWEEN {earliest_ts} AND {latest_valid_ts} THEN strftime(invoice_ts, '%Y-%m')
         ELSE 'undated' END AS partition_month
FROM dated
