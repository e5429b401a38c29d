-- quarantine_examples: a few rejected rows with their reason and origin.
SELECT reason, invoice_no, stock_code, description, quantity, unit_price, invoice_date, customer_id,
       source_row
FROM quarantine
ORDER BY reason, source_file, source_row
LIMIT {limit}
