-- qa_copurchase: what is bought with a product in `ecommerce ask`: the invoices with a sale of one of
-- {codes} (the product asked about; several stock codes when they share its name), within
-- {lines_filter} (period, country: a condition the answerer composes, values as literals), and on those
-- invoices the other products sold (never fee, postage or voucher lines: {not_products} and is_product),
-- ranked by the number of invoices they share with it. Over the analytics view `sale_lines`.
WITH anchor AS (
    SELECT DISTINCT invoice_no
    FROM sale_lines
    WHERE is_sale AND stock_code IN {codes} AND {lines_filter}
),
others AS (
    SELECT s.stock_code, COUNT(DISTINCT s.invoice_no) AS orders_together
    FROM sale_lines AS s
    JOIN anchor AS a ON a.invoice_no = s.invoice_no
    WHERE s.is_sale AND s.stock_code NOT IN {codes} AND s.stock_code NOT IN {not_products}
    GROUP BY s.stock_code
)
SELECT
    stock_code,
    orders_together,
    (SELECT COUNT(*) FROM anchor) AS anchor_orders,
    COUNT(*) OVER () AS ranked_count,
    COUNT(*) OVER (PARTITION BY orders_together) AS same_value_count
FROM others
ORDER BY orders_together DESC, stock_code
LIMIT {limit}
