-- Where? The last hour per location (blob6, request.cf.colo): traffic, failures, p99. A problem
-- in one location only is the network's or the platform's, not the counter's.
SELECT
  blob6 AS colo,
  SUM(_sample_interval * double1) AS requests,
  SUM(IF(blob3 = '5xx', _sample_interval * double1, 0)) / SUM(_sample_interval * double1) AS failed_ratio,
  quantileExactWeighted(0.99)(double2, _sample_interval) AS p99_ms
FROM number_acidizer_requests
WHERE timestamp > NOW() - INTERVAL '1' HOUR
GROUP BY colo
ORDER BY requests DESC
LIMIT 30
