-- PAGE alert (fast burn): the availability error budget (0.1% of requests failing over 30 days)
-- burning at 14.4x or more over the last hour AND over the last 5 minutes (2% of the 30-day
-- budget spent in one hour). Run every minute; page when both
-- burn_1h and burn_5m are 14.4 or more.
SELECT
  SUM(IF(timestamp > NOW() - INTERVAL '1' HOUR AND blob3 = '5xx', _sample_interval * double1, 0))
    / SUM(IF(timestamp > NOW() - INTERVAL '1' HOUR, _sample_interval * double1, 0)) / 0.001 AS burn_1h,
  SUM(IF(timestamp > NOW() - INTERVAL '5' MINUTE AND blob3 = '5xx', _sample_interval * double1, 0))
    / SUM(IF(timestamp > NOW() - INTERVAL '5' MINUTE, _sample_interval * double1, 0)) / 0.001 AS burn_5m
FROM number_acidizer_requests
WHERE timestamp > NOW() - INTERVAL '1' HOUR
  AND blob1 != 'other'
