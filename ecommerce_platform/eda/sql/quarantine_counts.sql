-- quarantine_counts: the quarantine recounted from its published table, per invoice month and reason.
SELECT partition_month, reason, COUNT(*) AS lines
FROM quarantine
GROUP BY partition_month, reason
ORDER BY partition_month, reason
