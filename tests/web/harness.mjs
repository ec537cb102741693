// Shared by the browser suite and the screenshot script: a real `wrangler dev` (the project's one
// Worker script, with the static assets and their _headers) on a free port with a fresh state
// folder, and Debian's Chromium driven by playwright-core.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const ROOT = new URL('../../', import.meta.url).pathname;
export const CHROMIUM = '/usr/bin/chromium';
export const ADMIN_TOKEN = 'local-admin-token-for-tests';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A port nobody listens on right now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

const quote = (s) => `'${String(s).replaceAll("'", "'\\''")}'`;

let built = false;

/**
 * Starts `wrangler dev` in its own process group and waits for /api/health; `vars` become
 * `--var NAME:VALUE` (besides ADMIN_TOKEN). A watchdog in the group takes it down if this
 * process dies without calling stop() (a crash, a timeout kill).
 * @returns {Promise<{base: string, stop: () => Promise<void>, log: () => string}>}
 */
export async function startServer({ readyWithinMs = 120_000, vars = {} } = {}) {
  const port = await freePort();
  const inspector = await freePort();
  const state = mkdtempSync(join(tmpdir(), 'acidizer-web-'));
  const logPath = `${state}.log`;
  if (!built) {
    const b = spawnSync('sh', [join(ROOT, 'scripts/build.sh')], { cwd: ROOT, encoding: 'utf8' });
    if (b.status !== 0) throw new Error(`scripts/build.sh failed:\n${b.stdout}\n${b.stderr}`);
    built = true;
  }
  const args = [
    'dev', '--ip', '127.0.0.1', '--port', port, '--inspector-port', inspector,
    '--persist-to', state, '--var', `ADMIN_TOKEN:${ADMIN_TOKEN}`,
    '--show-interactive-dev-session=false',
    ...Object.entries(vars).flatMap(([k, v]) => ['--var', `${k}:${v}`]),
  ];
  const script =
    `${quote(join(ROOT, 'node_modules/.bin/wrangler'))} ${args.map(quote).join(' ')} & ` +
    `while kill -0 ${process.pid} 2>/dev/null; do sleep 0.5; done; kill -TERM -$$; sleep 3; kill -KILL -$$`;
  const out = openSync(logPath, 'w');
  const child = spawn('sh', ['-c', script], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', out, out],
    env: {
      ...process.env,
      WRANGLER_SEND_METRICS: 'false',
      CLOUDFLARE_CF_FETCH_ENABLED: 'false',
      WRANGLER_HIDE_BANNER: 'true',
      NO_COLOR: '1',
      CI: '1',
      WRANGLER_REGISTRY_PATH: `${state}.registry`,
    },
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const log = () => readFileSync(logPath, 'utf8');
  let stopped = false;

  async function stop() {
    if (stopped) return;
    stopped = true;
    const signal = (sig) => {
      try {
        process.kill(-child.pid, sig);
      } catch {
        // The group is already gone.
      }
    };
    signal('SIGTERM');
    const done = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)]);
    signal('SIGKILL');
    if (!done) await Promise.race([exited, sleep(2000)]);
    rmSync(state, { recursive: true, force: true });
    rmSync(logPath, { force: true });
    rmSync(`${state}.registry`, { recursive: true, force: true });
  }

  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + readyWithinMs;
  for (;;) {
    try {
      const res = await fetch(`${base}/api/health`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline || child.exitCode !== null) {
      const text = log();
      await stop();
      throw new Error(`wrangler dev did not become ready on ${base}:\n${text}`);
    }
    await sleep(150);
  }
  return { base, stop, log };
}

/** Headless Chromium with a fresh profile (playwright makes one per launch and removes it). */
export function launchBrowser() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (scripts/setup.sh test does it)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

/** A small client for the API, as another user (or a script) would use it. */
export function apiClient(base) {
  async function call(method, path, { body, key, admin } = {}) {
    const headers = {};
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (key) headers['Idempotency-Key'] = key;
    if (admin) headers.Authorization = `Bearer ${ADMIN_TOKEN}`;
    const res = await fetch(`${base}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const data = await res.json();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(data)}`);
    return data;
  }
  return {
    value: () => call('GET', '/api/value'),
    increment: (amount) => call('POST', '/api/increment', { body: { amount } }),
    decrement: (amount) => call('POST', '/api/decrement', { body: { amount } }),
    set: (value) => call('POST', '/api/admin/set', { body: { value }, admin: true }),
    audit: (after, limit = 1000) => call('GET', `/api/audit?after=${after}&limit=${limit}`),
  };
}
