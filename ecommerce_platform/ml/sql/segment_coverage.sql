-- segment_coverage: counted again from the published tables, does `customer_segments` label every
-- customer of `customer_features` exactly once, with a name, clustering only customers with net spend?
-- (ml/segments.py coverage_problems reads these counts.) {no_net_spend} is the label of customers
-- without net spend (a literal).
SELECT
    (SELECT count(*) FROM customer_features) AS customers,
    (SELECT count(DISTINCT customer_id) FROM customer_features) AS distinct_customers,
    (SELECT count(*) FROM customer_segments) AS labelled,
    (SELECT count(DISTINCT customer_id) FROM customer_segments) AS distinct_labelled,
    (SELECT count(*) FROM customer_features AS f
     WHERE NOT EXISTS (SELECT 1 FROM customer_segments AS s WHERE s.customer_id = f.customer_id)) AS unlabelled,
    (SELECT count(*) FROM customer_segments AS s
     WHERE NOT EXISTS (SELECT 1 FROM customer_features AS f WHERE f.customer_id = s.customer_id)) AS unknown,
    (SELECT count(*) FROM customer_segments WHERE segment IS NULL OR segment = '') AS unnamed,
    (SELECT count(*) FROM customer_segments
     WHERE segment <> {no_net_spend} AND (monetary <= 0 OR frequency <= 0)) AS clustered_without_spend,
    (SELECT count(*) FROM customer_features AS f
     JOIN customer_segments AS s ON s.customer_id = f.customer_id
     WHERE f.has_net_spend <> (s.segment <> {no_net_spend})) AS misfiled
