// wrk as bench/clients.mjs and bench/polls.mjs run it: closed-loop keyed POSTs (or GETs) through
// bench/wrk.lua, whose summary line (BENCH_JSON) gives the figures.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './server.mjs';

/**
 * Runs wrk against `url` (`/api/increment`, or `/api/value` unless `post`) with `threads` threads
 * and `connections` connections for `seconds` s; resolves to `{ rps, latency_ms: { p50, p99,
 * p999 } }` and rejects if wrk fails or prints no summary.
 */
export function wrk(url, { threads = 2, connections, seconds, post }) {
  const route = post ? '/api/increment' : '/api/value';
  const args = [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--timeout', '5s', '-s', path.join(ROOT, 'bench/wrk.lua'),
    url + route, '--', post ? 'post' : 'get', `wrk${Date.now()}`];
  return new Promise((resolve, reject) => {
    const w = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    w.stdout.on('data', (d) => (out += d));
    w.stderr.on('data', (d) => (err += d));
    w.on('error', reject);
    w.on('exit', (code) => {
      const line = /BENCH_JSON (.*)/.exec(out);
      if (code !== 0 || !line) return reject(new Error(`wrk failed (${code}): ${err.trim() || out.trim()}`));
      const m = JSON.parse(line[1]);
      const ms = (us) => us / 1000;
      resolve({ rps: m.ok / (m.duration_us / 1e6), latency_ms: { p50: ms(m.latency_us.p50), p99: ms(m.latency_us.p99), p999: ms(m.latency_us.p999) } });
    });
  });
}
