-- clean_transactions: the valid lines, exact duplicates removed (see line_groups.sql), with the
-- flags every downstream layer uses; the partition columns (year, month) last.
--
-- THE definition of a sale, used by every view and model:
--   is_sale = not a cancellation AND quantity > 0 AND unit_price > 0 AND a real product
-- (a real product: not postage, carriage, fees, manual lines, discounts, samples, bad-debt
-- adjustments or gift vouchers; see NON_PRODUCT_CODES in lake/schema.py).
WITH valid AS (
    SELECT
        invoice_no_t AS invoice_no,
        stock_code_t AS stock_code,
        description_t AS description,
        CAST(quantity_num AS BIGINT) AS quantity,
        invoice_ts_t AS invoice_ts,
        price_num AS unit_price,
        customer_id_t AS customer_id,
        country_t AS country,
        source,
        copies
    FROM {line_groups} AS lg
),
flagged AS (
    SELECT
        *,
        STARTS_WITH(invoice_no, 'C') AS is_cancellation,
        NOT (stock_code IN {non_product_codes} OR {non_product_prefix_test}) AS is_product
    FROM valid
)
SELECT
    invoice_no,
    stock_code,
    description,
    quantity,
    invoice_ts,
    CAST(invoice_ts AS DATE) AS invoice_date,
    unit_price,
    customer_id,
    country,
    ROUND(quantity * unit_price, 2) AS line_total,
    is_cancellation,
    is_product,
    customer_id IS NULL AS is_guest,
    (NOT is_cancellation AND quantity > 0 AND unit_price > 0 AND is_product) AS is_sale,
    (is_cancellation AND quantity < 0 AND is_product) AS is_return,
    source,
    copies AS source_lines,
    CAST(YEAR(invoice_ts) AS INTEGER) AS year,
    CAST(MONTH(invoice_ts) AS INTEGER) AS month
FROM flagged
