-- reconciliation: every input line is clean, quarantined, or a duplicate of a clean line.
-- (Engines that stream the outputs straight from the source instead take rows_clean and
-- rows_quarantined from the rows they wrote, and rows_in from a count of the source lines.)
SELECT
    t.rows_in,
    t.rows_quarantined,
    g.rows_duplicate,
    g.rows_clean
FROM (
    SELECT
        COUNT(*) AS rows_in,
        COUNT(*) FILTER (WHERE reject_reason IS NOT NULL) AS rows_quarantined
    FROM {typed_lines} AS typed
) AS t
CROSS JOIN (
    SELECT
        COALESCE(SUM(copies - 1), 0) AS rows_duplicate,
        COUNT(*) AS rows_clean
    FROM {line_groups} AS lg
) AS g
