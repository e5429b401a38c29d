-- mojibake_examples: a few distinct values of one text column with mojibake (the column is named by the
-- platform; the pattern is lake/rules.py's MOJIBAKE_PATTERN), with the lines that carry each.
SELECT {column} AS value, COUNT(*) AS lines
FROM transactions
WHERE REGEXP_MATCHES({column}, {pattern})
GROUP BY {column}
ORDER BY lines DESC, value
LIMIT {limit}
