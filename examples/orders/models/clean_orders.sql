-- Paid orders with a positive amount, typed.
-- Inputs are inferred from the query: main.raw_orders (a seed).
SELECT
    id::INTEGER          AS id,
    lower(customer)      AS customer,
    ordered_at::DATE     AS ordered_at,
    amount::DECIMAL(10,2) AS amount
FROM raw_orders
WHERE status = 'paid'
  AND amount > 0
