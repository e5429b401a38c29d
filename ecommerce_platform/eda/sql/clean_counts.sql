-- clean_counts: the clean zone recounted from its published tables, per invoice month: clean rows, and
-- the exact duplicates folded into them (SUM(source_lines) - rows: each clean row says how many input
-- lines it stands for).
SELECT
    year,
    month,
    COUNT(*) AS rows_clean,
    COALESCE(SUM(source_lines), 0) - COUNT(*) AS rows_duplicate
FROM transactions
GROUP BY year, month
ORDER BY year, month
