-- Distinct (invoice, product) of sales (the analytics view `sale_lines`, is_sale) with integer ids: they
-- make the co-purchase self-join (tens of millions of pairs on the real file) several times cheaper
-- than joining on strings. Fee, postage and voucher lines are not products ({not_products}: schema.NON_PRODUCT_CODES,
-- see knowledge.py).
SELECT CAST(dense_rank() OVER (ORDER BY invoice_no) AS BIGINT) AS inv,
       CAST(dense_rank() OVER (ORDER BY stock_code) AS BIGINT) AS prod,
       stock_code
FROM (SELECT DISTINCT invoice_no, stock_code FROM sale_lines
      WHERE is_sale AND stock_code NOT IN {not_products}) AS baskets
