// A closed-loop load client that serves its connections evenly (bench/clients.mjs, and
// `make bench`'s "even" runs): one Node.js keep-alive connection per loop, each sending its
// next request as soon as its last one is answered. wrk serves many connections from each of
// its threads; at saturation some of them wait seconds while the rest cycle fast, which sets
// the p99 of any target it measures here (BENCHMARKS.md, "The tail at saturation, by load
// client"). Here every connection gets the client's attention alike, so a long wait is the
// server's. The client's own CPU is about one core, as wrk with one thread.
import http from 'node:http';

const now = () => Number(process.hrtime.bigint()) / 1e6;
const quantile = (sorted, q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] : null);

/**
 * `connections` loops against `url` for `seconds`: keyed POSTs to /api/increment (a unique
 * `Idempotency-Key` each) when `post`, else GETs of /api/value. Returns the 200s a second,
 * their latency quantiles (ms), the other answers, and the fewest and most 200s one connection
 * got.
 */
export async function even(url, { connections, seconds, post }) {
  const u = new URL(url);
  const route = post ? '/api/increment' : '/api/value';
  const end = now() + seconds * 1000;
  const lat = [];
  const ok = new Array(connections).fill(0);
  let other = 0;
  const send = (agent, key) =>
    new Promise((resolve) => {
      const headers = key ? { 'Idempotency-Key': key } : {};
      const req = http.request({ host: u.hostname, port: u.port, path: route, method: post ? 'POST' : 'GET', headers, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      });
      req.on('error', () => resolve(0));
      req.end();
    });
  const run = `even${Date.now()}`;
  const t0 = now();
  await Promise.all(ok.map(async (_, c) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (let n = 0; now() < end; n++) {
      const start = now();
      if ((await send(agent, post ? `${run}.${c}.${n}` : null)) === 200) {
        lat.push(now() - start);
        ok[c]++;
      } else {
        other++;
      }
    }
    agent.destroy();
  }));
  const elapsed = (now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return {
    ok: lat.length,
    other,
    rps: lat.length / elapsed,
    latency_ms: { p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), p999: quantile(lat, 0.999), max: lat.at(-1) ?? null },
    per_connection: { fewest: Math.min(...ok), most: Math.max(...ok) },
  };
}
