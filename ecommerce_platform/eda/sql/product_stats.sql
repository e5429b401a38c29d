-- product_stats: how often each product (stock code) sells, from the analytics view popular_products
-- (products with at least one sale): orders, customers, units, gross sales (before returns), net revenue.
SELECT
    stock_code,
    description,
    orders,
    customers,
    units_sold,
    CAST(gross_sales AS DOUBLE) AS gross_sales,
    CAST(net_revenue AS DOUBLE) AS net_revenue
FROM popular_products
WHERE units_sold > 0
ORDER BY gross_sales DESC, stock_code
