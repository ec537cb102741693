-- wrk script for the HTTP benchmarks.
--
--   wrk ... -s bench/wrk.lua <url> -- get
--   wrk ... -s bench/wrk.lua <url> -- post <run-id>
--
-- "get" sends plain GETs. "post" sends POST /api/increment with an empty body and a UNIQUE
-- Idempotency-Key per request (<run-id>.<thread>.<n>): a repeated key would be answered from the
-- stored response and measure the replay path instead of a real change.
--
-- Both modes count responses by status class in response(), because wrk's own error count only
-- covers statuses >= 400, and print one machine-readable line in done():
--   BENCH_JSON {"requests":..,"duration_us":..,"ok":..,"non2xx":..,"errors":{..},"latency_us":{..}}
-- The same script (and so the same client-side cost) is used for every target.

local threads = {}
local counter = 1

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  mode = args[1] or "get"
  run_id = args[2] or tostring(os.time())
  n = 0
  ok = 0
  non2xx = 0
  if mode == "post" then
    wrk.method = "POST"
    wrk.body = nil
  end
end

function request()
  if mode ~= "post" then
    return wrk.format()
  end
  n = n + 1
  -- Only [A-Za-z0-9._:-] is allowed in keys; this stays well inside 255 bytes.
  local key = run_id .. "." .. id .. "." .. n
  return wrk.format("POST", nil, { ["Idempotency-Key"] = key, ["Content-Length"] = "0" }, nil)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
  else
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local total_ok, total_bad = 0, 0
  for _, t in ipairs(threads) do
    total_ok = total_ok + t:get("ok")
    total_bad = total_bad + t:get("non2xx")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"ok":%d,"non2xx":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, summary.duration, total_ok, total_bad,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
