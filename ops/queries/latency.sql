-- Latency per route in 5-minute steps over the last 6 hours (ms from arrival at the edge to the
-- response being ready; the edge's clock advances across I/O, so this is the wait for the
-- counter object, not CPU time).
SELECT
  toStartOfInterval(timestamp, INTERVAL '5' MINUTE) AS t,
  blob1 AS route,
  quantileExactWeighted(0.5)(double2, _sample_interval) AS p50_ms,
  quantileExactWeighted(0.95)(double2, _sample_interval) AS p95_ms,
  quantileExactWeighted(0.99)(double2, _sample_interval) AS p99_ms,
  SUM(_sample_interval * double1) AS requests
FROM number_acidizer_requests
WHERE timestamp > NOW() - INTERVAL '6' HOUR
  AND blob1 IN ('/api/value', '/api/increment', '/api/decrement')
GROUP BY t, route
ORDER BY t, route
