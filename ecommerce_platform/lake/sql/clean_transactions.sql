-- clean_transactions: valid lines, exact duplicates removed (same values in all eight source
-- columns, after typing), with the flags every downstream layer uses. `copies` counts how many
-- input lines each clean line stands for (copies - 1 of them were duplicates); it is not written.
--
-- THE definition of a sale, used by every view and model:
--   is_sale = not a cancellation AND quantity > 0 AND unit_price > 0 AND a real product
-- (a real product: not postage, carriage, fees, manual lines, discounts, samples, bad-debt
-- adjustments or gift vouchers; see NON_PRODUCT_CODES in lake/schema.py).
WITH valid AS (
    SELECT * FROM {typed_lines} WHERE reject_reason IS NULL
),
dedup AS (
    SELECT
        invoice_no_t AS invoice_no,
        stock_code_t AS stock_code,
        description_t AS description,
        CAST(quantity_num AS BIGINT) AS quantity,
        invoice_ts_t AS invoice_ts,
        price_num AS unit_price,
        customer_id_t AS customer_id,
        country_t AS country,
        MIN(route) AS source,
        COUNT(*) AS copies
    FROM valid
    GROUP BY invoice_no_t, stock_code_t, description_t, quantity_num, invoice_ts_t, price_num,
             customer_id_t, country_t
),
flagged AS (
    SELECT
        *,
        STARTS_WITH(invoice_no, 'C') AS is_cancellation,
        NOT (stock_code IN ({non_product_codes}) OR {non_product_prefix_test}) AS is_product
    FROM dedup
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
    MD5(CONCAT_WS('|', invoice_no, stock_code, COALESCE(description, ''), CAST(quantity AS VARCHAR),
                  CAST(invoice_ts AS VARCHAR), CAST(unit_price AS VARCHAR),
                  COALESCE(customer_id, ''), country)) AS line_id,
    CAST(YEAR(invoice_ts) AS INTEGER) AS year,
    CAST(MONTH(invoice_ts) AS INTEGER) AS month,
    copies
FROM flagged
