-- Is it healthy? The last hour per route: requests per second, the share of failures (5xx) and
-- refusals (4xx), and latency percentiles, all weighted by _sample_interval (each stored point
-- stands for _sample_interval requests when the platform samples).
SELECT
  blob1 AS route,
  SUM(_sample_interval * double1) / 3600 AS requests_per_second,
  SUM(IF(blob3 = '5xx', _sample_interval * double1, 0)) / SUM(_sample_interval * double1) AS failed_ratio,
  SUM(IF(blob3 = '4xx', _sample_interval * double1, 0)) / SUM(_sample_interval * double1) AS refused_ratio,
  quantileExactWeighted(0.5)(double2, _sample_interval) AS p50_ms,
  quantileExactWeighted(0.95)(double2, _sample_interval) AS p95_ms,
  quantileExactWeighted(0.99)(double2, _sample_interval) AS p99_ms
FROM number_acidizer_requests
WHERE timestamp > NOW() - INTERVAL '1' HOUR
GROUP BY route
ORDER BY requests_per_second DESC
