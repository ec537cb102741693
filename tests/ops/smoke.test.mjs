// scripts/smoke.sh, the deploy pipeline's smoke test, against a real local server (`wrangler dev`
// with the project's wrangler.toml: the same bindings `make dev` starts, including the metrics
// dataset and the version metadata), and against an address where nothing answers, where it must
// fail quickly instead of hanging.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startServer, ROOT } from '../web/harness.mjs';

function smoke(url, env = {}) {
  return spawnSync('sh', ['scripts/smoke.sh', url], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, ...env },
  });
}

test('the smoke test passes against a local server and leaves the counter where it was', async () => {
  const server = await startServer();
  try {
    const before = await (await fetch(`${server.base}/api/value`)).json();
    const run = smoke(server.base);
    assert.equal(run.status, 0, `smoke failed:\n${run.stdout}\n${run.stderr}`);
    for (const step of ['health', 'read', 'socket', 'change', 'replay', 'broadcast', 'restore', 'health again']) {
      assert.match(run.stdout, new RegExp(`ok   ${step}\\b`), step);
    }
    const after = await (await fetch(`${server.base}/api/value`)).json();
    assert.equal(after.value, before.value, 'an increment and a decrement');
    assert.equal(after.version, before.version + 2, 'two changes; the replay applied nothing');
    const audit = await (await fetch(`${server.base}/api/audit?after=${before.version}`)).json();
    assert.deepEqual(audit.entries.map((e) => e.operation), ['increment', 'decrement']);
  } finally {
    await server.stop();
  }
});

test('the smoke test fails, and fast, when nothing answers', () => {
  const started = Date.now();
  const run = smoke('http://127.0.0.1:9', { SMOKE_TIMEOUT: '30' });
  assert.notEqual(run.status, 0);
  assert.match(run.stderr, /FAIL health/);
  assert.ok(Date.now() - started < 30_000);
});

test('the smoke test refuses a missing URL', () => {
  const run = smoke('');
  assert.notEqual(run.status, 0);
});
