-- Since which version? The last 6 hours per deployed version (blob5 = CF_VERSION_METADATA.id):
-- when it first and last served, its share of traffic, failures and p99 latency. During a
-- gradual rollout the new version and the old one appear side by side.
SELECT
  blob5 AS version_id,
  MIN(timestamp) AS first_seen,
  MAX(timestamp) AS last_seen,
  SUM(_sample_interval * double1) AS requests,
  SUM(IF(blob3 = '5xx', _sample_interval * double1, 0)) / SUM(_sample_interval * double1) AS failed_ratio,
  quantileExactWeighted(0.99)(double2, _sample_interval) AS p99_ms
FROM number_acidizer_requests
WHERE timestamp > NOW() - INTERVAL '6' HOUR
GROUP BY version_id
ORDER BY first_seen
