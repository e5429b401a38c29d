-- reconciliation: every input line is clean, quarantined, or a duplicate of a clean line.
SELECT
    COALESCE(SUM(copies), 0) AS rows_in,
    COALESCE(SUM(copies) FILTER (WHERE reject_reason IS NOT NULL), 0) AS rows_quarantined,
    COALESCE(SUM(copies - 1) FILTER (WHERE reject_reason IS NULL), 0) AS rows_duplicate,
    COUNT(*) FILTER (WHERE reject_reason IS NULL) AS rows_clean
FROM {line_groups}
