-- qa_totals: the totals and counts of `ecommerce ask` for a period, a country, a customer or products,
-- over the analytics view `sale_lines` (THE sales definition turned into amounts), figured as the view
-- sales_kpis does: net_revenue = gross sales - returns (returns counted when the return was raised),
-- orders = distinct invoices with a sale line, customers = distinct known customers (guest checkouts are
-- sales but not customers), countries = countries with a sale, 'Unspecified' (no country) not counted.
-- Filled by sql_dialect.render: {lines_filter} is a condition the answerer composes from a fixed set,
-- every value from a question a literal inside it; {unspecified} is the clean zone's placeholder.
SELECT
    CAST(SUM(units_sold) AS BIGINT) AS units_sold,
    CAST(SUM(units_returned) AS BIGINT) AS units_returned,
    CAST(SUM(units_sold) - SUM(units_returned) AS BIGINT) AS net_units,
    CAST(SUM(sale_amount) AS DOUBLE) AS gross_sales,
    CAST(SUM(return_amount) AS DOUBLE) AS returns_value,
    CAST(SUM(sale_amount) - SUM(return_amount) AS DOUBLE) AS net_revenue,
    COUNT(DISTINCT CASE WHEN is_sale THEN invoice_no END) AS orders,
    COUNT(DISTINCT CASE WHEN is_return THEN invoice_no END) AS return_invoices,
    COUNT(DISTINCT CASE WHEN is_sale THEN customer_id END) AS customers,
    COUNT(DISTINCT CASE WHEN is_sale THEN stock_code END) AS products,
    COUNT(DISTINCT CASE WHEN is_sale AND country <> {unspecified} THEN country END) AS countries,
    COUNT(DISTINCT CASE WHEN is_sale THEN invoice_date END) AS trading_days,
    MIN(CASE WHEN is_sale THEN invoice_date END) AS first_sale,
    MAX(CASE WHEN is_sale THEN invoice_date END) AS last_sale,
    ROUND(CAST(SUM(sale_amount) AS DOUBLE)
          / NULLIF(COUNT(DISTINCT CASE WHEN is_sale THEN invoice_no END), 0), 2) AS avg_order_value,
    ROUND(CAST(SUM(return_amount) AS DOUBLE) / NULLIF(CAST(SUM(sale_amount) AS DOUBLE), 0), 4) AS value_return_rate,
    ROUND(CAST(SUM(units_returned) AS DOUBLE) / NULLIF(SUM(units_sold), 0), 4) AS unit_return_rate
FROM sale_lines
WHERE {lines_filter}
