-- Latency SLOs over the last 30 days, the original design's targets: reads (GET /api/value)
-- p95 < 50 ms and p99 < 100 ms; changes (POST /api/increment, /api/decrement) p95 < 100 ms and
-- p99 < 200 ms. Shows the percentiles and the share of successful requests within each bound.
SELECT
  blob1 AS route,
  quantileExactWeighted(0.95)(double2, _sample_interval) AS p95_ms,
  quantileExactWeighted(0.99)(double2, _sample_interval) AS p99_ms,
  SUM(IF(double2 < IF(blob1 = '/api/value', 50, 100), _sample_interval, 0)) / SUM(_sample_interval) AS within_p95_bound,
  SUM(IF(double2 < IF(blob1 = '/api/value', 100, 200), _sample_interval, 0)) / SUM(_sample_interval) AS within_p99_bound
FROM number_acidizer_requests
WHERE timestamp > NOW() - INTERVAL '30' DAY
  AND blob1 IN ('/api/value', '/api/increment', '/api/decrement')
  AND blob3 = '2xx'
GROUP BY route
ORDER BY route
