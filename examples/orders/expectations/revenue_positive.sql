-- Every customer's revenue is positive: the rows returned are failures.
SELECT customer, total
FROM revenue
WHERE total <= 0
