-- TICKET alert (slow burn): the availability error budget burning at 6x or more over the last
-- 6 hours AND over the last 30 minutes (5% of the 30-day budget spent in 6 hours). Run every
-- 5 minutes; open a ticket when both burn_6h and burn_30m are 6 or more.
SELECT
  SUM(IF(timestamp > NOW() - INTERVAL '6' HOUR AND blob3 = '5xx', _sample_interval * double1, 0))
    / SUM(IF(timestamp > NOW() - INTERVAL '6' HOUR, _sample_interval * double1, 0)) / 0.001 AS burn_6h,
  SUM(IF(timestamp > NOW() - INTERVAL '30' MINUTE AND blob3 = '5xx', _sample_interval * double1, 0))
    / SUM(IF(timestamp > NOW() - INTERVAL '30' MINUTE, _sample_interval * double1, 0)) / 0.001 AS burn_30m
FROM number_acidizer_requests
WHERE timestamp > NOW() - INTERVAL '6' HOUR
  AND blob1 != 'other'
