-- quality_by_month: what the clean zone holds per invoice month: sales, cancellations, returns, guest
-- checkouts, lines without a country ('Unspecified', the clean zone's placeholder), non-product lines,
-- zero prices, missing descriptions; lines flagged (kept, not dropped) for an extreme quantity or unit
-- price (bounds of lake/rules.py: EXTREME_QUANTITY units either way, EXTREME_UNIT_PRICE GBP or more);
-- and sale lines outside the statistical fences (quantity and unit price bounds from eda/quality.py).
-- Counts only: the money of a month comes from the analytics views (sales_by_month.sql).
SELECT
    year,
    month,
    COUNT(*) AS lines,
    COUNT(*) FILTER (WHERE is_sale) AS sale_lines,
    COUNT(DISTINCT invoice_no) AS invoices,
    COUNT(*) FILTER (WHERE is_cancellation) AS cancellation_lines,
    COUNT(DISTINCT invoice_no) FILTER (WHERE is_cancellation) AS cancelled_invoices,
    COUNT(*) FILTER (WHERE is_return) AS return_lines,
    COUNT(*) FILTER (WHERE is_guest) AS guest_lines,
    COUNT(*) FILTER (WHERE country = {unspecified}) AS unspecified_country_lines,
    COUNT(*) FILTER (WHERE NOT is_product) AS non_product_lines,
    COUNT(*) FILTER (WHERE unit_price = 0) AS zero_price_lines,
    COUNT(*) FILTER (WHERE quantity <= 0 AND NOT is_cancellation) AS nonpositive_qty_not_cancelled,
    COUNT(*) FILTER (WHERE description IS NULL) AS missing_description,
    COUNT(*) FILTER (WHERE ABS(quantity) >= {extreme_quantity}) AS extreme_quantity_lines,
    COUNT(*) FILTER (WHERE unit_price >= {extreme_unit_price}) AS extreme_price_lines,
    COUNT(*) FILTER (WHERE is_sale AND (quantity < {qty_lo} OR quantity > {qty_hi})) AS quantity_outliers,
    COUNT(*) FILTER (WHERE is_sale AND (unit_price < {price_lo} OR unit_price > {price_hi})) AS price_outliers
FROM transactions
GROUP BY year, month
ORDER BY year, month
