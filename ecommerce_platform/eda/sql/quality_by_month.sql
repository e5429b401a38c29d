-- quality_by_month: what the clean zone holds per invoice month: sales, cancellations, returns,
-- guest checkouts, non-product lines, zero prices, missing descriptions, and sale lines outside the
-- outlier fences (quantity and unit price bounds substituted from data/quality.py's fences).
SELECT
    year,
    month,
    COUNT(*) AS lines,
    COUNT(*) FILTER (WHERE is_sale) AS sale_lines,
    ROUND(COALESCE(SUM(line_total) FILTER (WHERE is_sale), 0), 2) AS revenue,
    COUNT(DISTINCT invoice_no) AS invoices,
    COUNT(*) FILTER (WHERE is_cancellation) AS cancellation_lines,
    COUNT(DISTINCT invoice_no) FILTER (WHERE is_cancellation) AS cancelled_invoices,
    COUNT(*) FILTER (WHERE is_return) AS return_lines,
    ROUND(COALESCE(-SUM(line_total) FILTER (WHERE is_return), 0), 2) AS returned_value,
    COUNT(*) FILTER (WHERE is_guest) AS guest_lines,
    COUNT(*) FILTER (WHERE NOT is_product) AS non_product_lines,
    COUNT(*) FILTER (WHERE unit_price = 0) AS zero_price_lines,
    COUNT(*) FILTER (WHERE quantity <= 0 AND NOT is_cancellation) AS nonpositive_qty_not_cancelled,
    COUNT(*) FILTER (WHERE description IS NULL) AS missing_description,
    COUNT(*) FILTER (WHERE is_sale AND (quantity < {qty_lo} OR quantity > {qty_hi})) AS quantity_outliers,
    COUNT(*) FILTER (WHERE is_sale AND (unit_price < {price_lo} OR unit_price > {price_hi})) AS price_outliers
FROM transactions
GROUP BY year, month
ORDER BY year, month
