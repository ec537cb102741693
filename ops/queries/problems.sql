-- If not, why? The last hour's refusals and failures by route, status and problem type
-- (blob7: rate-limited, unavailable, internal, precondition-failed, ...).
SELECT
  blob1 AS route,
  double4 AS status,
  blob7 AS problem,
  SUM(_sample_interval * double1) AS requests
FROM number_acidizer_requests
WHERE timestamp > NOW() - INTERVAL '1' HOUR
  AND double4 >= 400
GROUP BY route, status, problem
ORDER BY requests DESC
LIMIT 50
