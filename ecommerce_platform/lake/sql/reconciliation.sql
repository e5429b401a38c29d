-- reconciliation: every input line is clean, quarantined, or a duplicate of a clean line.
SELECT
    (SELECT COUNT(*) FROM {typed_lines}) AS rows_in,
    (SELECT COUNT(*) FROM {typed_lines} WHERE reject_reason IS NOT NULL) AS rows_quarantined,
    (SELECT COALESCE(SUM(copies - 1), 0) FROM {clean_transactions}) AS rows_duplicate,
    (SELECT COUNT(*) FROM {clean_transactions}) AS rows_clean
