-- Availability SLO (99.9% over 30 days): the share of API requests not failed (5xx) over the
-- last 30 days and how much of the error budget (0.1% of requests) is left. Refusals (4xx,
-- including rate limits) are the service working as specified and count as good.
SELECT
  SUM(_sample_interval * double1) AS requests,
  SUM(IF(blob3 = '5xx', _sample_interval * double1, 0)) AS failed,
  1 - SUM(IF(blob3 = '5xx', _sample_interval * double1, 0)) / SUM(_sample_interval * double1) AS availability,
  1 - (SUM(IF(blob3 = '5xx', _sample_interval * double1, 0)) / SUM(_sample_interval * double1)) / 0.001 AS budget_left
FROM number_acidizer_requests
WHERE timestamp > NOW() - INTERVAL '30' DAY
  AND blob1 != 'other'
