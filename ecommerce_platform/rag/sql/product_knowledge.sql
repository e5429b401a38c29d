-- One row of facts per product (stock code with at least one sale). Units and money come from the
-- analytics view `sale_lines` (analytics/sql/sale_lines.sql), THE place where the sales definition is
-- turned into amounts, aggregated as the view `popular_products` does: units_sold and gross_sales from
-- sale lines (is_sale: never cancellations), units_returned and returns_value from return lines
-- (is_return), net_revenue = gross_sales - returns_value, orders = distinct invoices with a sale line,
-- customers = distinct known customers with one, return_rate = units_returned / units_sold (4 decimals).
-- Unit prices are not amounts: min/max price come from the sale lines of the clean table `transactions`.
-- Not products: what the clean table's is_product flag says (postage, fees, vouchers...), and the codes of
-- {not_products} (schema.NON_PRODUCT_CODES, applied to the stock code as well).
-- 'Unspecified' (the clean zone's placeholder for a line without a country) is not a country: it is not
-- counted in `countries` nor listed in `top_countries` (its sales are in every other figure).
-- Runs after the temporary relations of basket_ids.sql and half_pairs.sql (warehouse.run_transform), which
-- are materialised once: the co-purchase self-join is the expensive part.
-- DuckDB dialect kept portable to Trino/Athena (tests: parse_trino(to_trino(this file))).
WITH sales AS (
    SELECT invoice_no, stock_code, description, units_sold, sale_amount, customer_id, country, invoice_date
    FROM sale_lines
    WHERE is_sale AND stock_code NOT IN {not_products}
),
names AS (
    SELECT stock_code, description, count(*) AS n_lines,
           row_number() OVER (PARTITION BY stock_code ORDER BY count(*) DESC, description) AS rn
    FROM sales
    WHERE description IS NOT NULL AND trim(description) <> ''
    GROUP BY stock_code, description
),
canonical AS (
    SELECT stock_code, description FROM names WHERE rn = 1
),
other_names AS (
    SELECT stock_code, string_agg(description, ' / ' ORDER BY rn) AS other_names
    FROM names
    WHERE rn BETWEEN 2 AND 4
    GROUP BY stock_code
),
facts AS (
    SELECT stock_code,
           sum(units_sold) AS units_sold,
           sum(sale_amount) AS gross_sales,
           count(*) AS sale_lines,
           count(DISTINCT invoice_no) AS orders,
           count(DISTINCT customer_id) AS customers,
           count(DISTINCT CASE WHEN country <> {unspecified} THEN country END) AS countries,
           min(invoice_date) AS first_sale,
           max(invoice_date) AS last_sale
    FROM sales
    GROUP BY stock_code
),
prices AS (
    SELECT stock_code, min(unit_price) AS min_price, max(unit_price) AS max_price
    FROM transactions
    WHERE is_sale AND stock_code NOT IN {not_products}
    GROUP BY stock_code
),
country_units AS (
    SELECT stock_code, country,
           row_number() OVER (PARTITION BY stock_code ORDER BY sum(units_sold) DESC, country) AS rn
    FROM sales
    WHERE country <> {unspecified}
    GROUP BY stock_code, country
),
top_countries AS (
    SELECT stock_code, string_agg(country, ', ' ORDER BY rn) AS top_countries
    FROM country_units
    WHERE rn <= 3
    GROUP BY stock_code
),
returns AS (
    SELECT stock_code, sum(units_returned) AS units_returned, sum(return_amount) AS returns_value
    FROM sale_lines
    WHERE is_return AND stock_code NOT IN {not_products}
    GROUP BY stock_code
),
product_ids AS (
    SELECT DISTINCT prod, stock_code FROM basket_ids
),
-- half_pairs holds each unordered pair once (p1 < p2): take both directions
pairs AS (
    SELECT p1 AS prod, p2 AS other, together FROM half_pairs
    UNION ALL
    SELECT p2 AS prod, p1 AS other, together FROM half_pairs
),
ranked_pairs AS (
    SELECT prod, other, together,
           row_number() OVER (PARTITION BY prod ORDER BY together DESC, other) AS rn
    FROM pairs
),
top_pairs AS (
    SELECT pa.stock_code, pb.stock_code AS other_code, r.together, r.rn
    FROM ranked_pairs AS r
    JOIN product_ids AS pa ON pa.prod = r.prod
    JOIN product_ids AS pb ON pb.prod = r.other
    WHERE r.rn <= 5
),
bought_with AS (
    SELECT r.stock_code,
           string_agg(
               r.other_code || ' ' || coalesce(c.description, '') || ' (' || CAST(r.together AS VARCHAR) || ' orders)',
               '; ' ORDER BY r.rn
           ) AS bought_with
    FROM top_pairs AS r
    LEFT JOIN canonical AS c ON c.stock_code = r.other_code
    GROUP BY r.stock_code
)
SELECT f.stock_code,
       coalesce(c.description, f.stock_code) AS description,
       o.other_names,
       CAST(f.units_sold AS BIGINT) AS units_sold,
       CAST(f.gross_sales AS DOUBLE) AS gross_sales,
       CAST(coalesce(r.units_returned, 0) AS BIGINT) AS units_returned,
       CAST(coalesce(r.returns_value, 0) AS DOUBLE) AS returns_value,
       CAST(f.gross_sales - coalesce(r.returns_value, 0) AS DOUBLE) AS net_revenue,
       CAST(p.min_price AS DOUBLE) AS min_price,
       CAST(p.max_price AS DOUBLE) AS max_price,
       CAST(round(CAST(f.gross_sales AS DOUBLE) / f.units_sold, 2) AS DOUBLE) AS avg_price,
       CAST(f.sale_lines AS BIGINT) AS sale_lines,
       CAST(f.orders AS BIGINT) AS orders,
       CAST(f.customers AS BIGINT) AS customers,
       CAST(f.countries AS BIGINT) AS countries,
       t.top_countries,
       f.first_sale,
       f.last_sale,
       CAST(round(CAST(coalesce(r.units_returned, 0) AS DOUBLE) / f.units_sold, 4) AS DOUBLE) AS return_rate,
       b.bought_with
FROM facts AS f
LEFT JOIN canonical AS c ON c.stock_code = f.stock_code
LEFT JOIN other_names AS o ON o.stock_code = f.stock_code
LEFT JOIN prices AS p ON p.stock_code = f.stock_code
LEFT JOIN top_countries AS t ON t.stock_code = f.stock_code
LEFT JOIN returns AS r ON r.stock_code = f.stock_code
LEFT JOIN bought_with AS b ON b.stock_code = f.stock_code
ORDER BY f.stock_code
