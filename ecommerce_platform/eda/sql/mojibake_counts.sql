-- mojibake_counts: clean lines whose text shows mojibake (UTF-8 decoded as Windows-1252, e.g. 'Â£'),
-- per text column; the pattern is lake/rules.py's MOJIBAKE_PATTERN. Flagged, not dropped.
SELECT
    COUNT(*) FILTER (WHERE REGEXP_MATCHES(invoice_no, {pattern})) AS invoice_no,
    COUNT(*) FILTER (WHERE REGEXP_MATCHES(stock_code, {pattern})) AS stock_code,
    COUNT(*) FILTER (WHERE REGEXP_MATCHES(description, {pattern})) AS description,
    COUNT(*) FILTER (WHERE REGEXP_MATCHES(customer_id, {pattern})) AS customer_id,
    COUNT(*) FILTER (WHERE REGEXP_MATCHES(country, {pattern})) AS country
FROM transactions
