-- product_catalog: one row per product sold to a known customer, with its most common description
-- (ties broken by the description's text) and its popularity; shipped with the recommender so that
-- the predict path shows names without querying the warehouse.
WITH described AS (
    SELECT stock_code, description, COUNT(*) AS n
    FROM transactions
    WHERE is_sale AND NOT is_guest AND description IS NOT NULL
    GROUP BY stock_code, description
),
ranked AS (
    SELECT stock_code, description,
           ROW_NUMBER() OVER (PARTITION BY stock_code ORDER BY n DESC, description) AS rk
    FROM described
),
popularity AS (
    SELECT stock_code, COUNT(DISTINCT customer_id) AS customers, SUM(quantity) AS units
    FROM transactions
    WHERE is_sale AND NOT is_guest
    GROUP BY stock_code
)
SELECT p.stock_code, d.description, CAST(p.customers AS BIGINT) AS customers,
       CAST(p.units AS BIGINT) AS units
FROM popularity AS p
LEFT JOIN ranked AS d ON d.stock_code = p.stock_code AND d.rk = 1
