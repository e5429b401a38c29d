-- quality_totals: whole-table counts that do not add up over months (distinct invoices, customers,
-- products, countries). countries leaves out 'Unspecified' (the clean zone's placeholder for a line
-- without a country: not a country). gross_line_total is the plain sum of every clean line's total
-- (sales, cancellations, fees, ...): a data quality figure, not revenue (revenue: the analytics views).
SELECT
    COUNT(*) AS lines,
    COUNT(DISTINCT invoice_no) AS invoices,
    COUNT(DISTINCT invoice_no) FILTER (WHERE is_cancellation) AS cancelled_invoices,
    COUNT(DISTINCT customer_id) AS customers,
    COUNT(DISTINCT invoice_no) FILTER (WHERE is_guest) AS guest_invoices,
    COUNT(DISTINCT stock_code) AS stock_codes,
    COUNT(DISTINCT stock_code) FILTER (WHERE NOT is_product) AS non_product_codes,
    COUNT(DISTINCT country) FILTER (WHERE country <> {unspecified}) AS countries,
    MIN(invoice_ts) AS first_invoice,
    MAX(invoice_ts) AS last_invoice,
    ROUND(SUM(line_total), 2) AS gross_line_total
FROM transactions
