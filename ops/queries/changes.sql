-- Changes per 5 minutes over the last 6 hours by outcome (applied, replayed, rejected, failed)
-- and the amount they moved. Many replays mean clients are retrying: look at latency and 5xx.
SELECT
  toStartOfInterval(timestamp, INTERVAL '5' MINUTE) AS t,
  blob4 AS outcome,
  SUM(_sample_interval * double1) AS changes,
  SUM(_sample_interval * double3) AS amount
FROM number_acidizer_requests
WHERE timestamp > NOW() - INTERVAL '6' HOUR
  AND blob2 = 'POST'
GROUP BY t, outcome
ORDER BY t, outcome
