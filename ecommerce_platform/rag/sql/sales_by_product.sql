-- sales_by_product: per product with a sale, its figures in the analytics view `sale_lines`, aggregated
-- as the view `popular_products` does. The check of product_knowledge recounts from it. Fee, postage and
-- voucher codes ({not_products}, schema.NON_PRODUCT_CODES) are not products here either.
SELECT
    stock_code,
    CAST(SUM(units_sold) AS BIGINT) AS units_sold,
    CAST(SUM(units_returned) AS BIGINT) AS units_returned,
    CAST(SUM(sale_amount) AS DOUBLE) AS gross_sales,
    CAST(SUM(return_amount) AS DOUBLE) AS returns_value,
    CAST(SUM(sale_amount) - SUM(return_amount) AS DOUBLE) AS net_revenue,
    COUNT(DISTINCT CASE WHEN is_sale THEN invoice_no END) AS orders,
    COUNT(DISTINCT CASE WHEN is_sale THEN customer_id END) AS customers
FROM sale_lines
WHERE stock_code NOT IN {not_products}
GROUP BY stock_code
HAVING SUM(units_sold) > 0
