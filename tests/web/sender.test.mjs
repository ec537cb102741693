// The click sender: keys, retries, backoff, the circuit breaker and the queue.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSender, parseSavedQueue, MAX_RESTORED } from '../../web/js/sender.mjs';
import { createClock, scriptedFetch, json, problem, applied, settle } from './fakes.mjs';

const BASE = 500;
const COOL_DOWN = 10_000;

/** A sender on a manual clock; `random` defaults to 0.5 so delays are exactly predictable. */
function setup(steps, { random = () => 0.5, fallback, restore, onQueue } = {}) {
  const clock = createClock();
  const net = scriptedFetch(steps, fallback);
  const states = [];
  let n = 0;
  const sender = createSender({
    fetch: net.fetch,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    now: clock.now,
    random,
    newKey: () => `key-${++n}`,
    deadline: () => undefined,
    onChange: (s) => states.push(s),
    base: BASE,
    cap: 16_000,
    threshold: 5,
    coolDown: COOL_DOWN,
    restore,
    onQueue,
  });
  return { clock, net, states, sender };
}

const ok = (value, version) => (request) => applied(request, { value, version });

test('a click is one POST with its own key, the amount as JSON, and resolves with the answer', async () => {
  const { net, sender } = setup([ok(5, 1)]);
  const outcome = await sender.submit('increment', 5);
  assert.equal(net.calls.length, 1);
  const [call] = net.calls;
  assert.equal(call.url, '/api/increment');
  assert.equal(call.method, 'POST');
  assert.equal(call.headers['content-type'], 'application/json');
  assert.equal(call.headers['idempotency-key'], 'key-1');
  assert.deepEqual(call.body, { amount: 5 });
  assert.equal(outcome.ok, true);
  assert.equal(outcome.key, 'key-1');
  assert.equal(outcome.body.version, 1);
  assert.equal(outcome.replayed, false);
  assert.equal(sender.state().pending, 0);
});

test('each click gets a different key; decrement goes to /api/decrement', async () => {
  const { net, sender } = setup([ok(1, 1), ok(0, 2)]);
  await sender.submit('increment', 1);
  await sender.submit('decrement', 1);
  assert.deepEqual(net.calls.map((c) => c.url), ['/api/increment', '/api/decrement']);
  assert.deepEqual(net.calls.map((c) => c.headers['idempotency-key']), ['key-1', 'key-2']);
});

test('a network failure is retried with the same key after the jittered backoff', async () => {
  const { clock, net, sender } = setup([new TypeError('Failed to fetch'), ok(3, 1)]);
  const done = sender.submit('increment', 3);
  await clock.advance(0);
  assert.equal(net.calls.length, 1);
  // random 0.5 × base·2^0 = 250 ms: not a moment sooner.
  await clock.advance(249);
  assert.equal(net.calls.length, 1);
  await clock.advance(1);
  assert.equal(net.calls.length, 2);
  const outcome = await done;
  assert.equal(outcome.ok, true);
  assert.equal(net.calls[1].headers['idempotency-key'], net.calls[0].headers['idempotency-key']);
  assert.deepEqual(net.calls[1].body, net.calls[0].body);
});

test('the backoff doubles per failed attempt', async () => {
  const times = [];
  let clock;
  const fail = () => (times.push(clock.now()), new TypeError('Failed to fetch'));
  const succeed = (r) => (times.push(clock.now()), applied(r, { value: 1, version: 1 }));
  // Four failures stay under the breaker's threshold of five.
  const s = setup([fail, fail, fail, fail, succeed], { random: () => 0.999 });
  clock = s.clock;
  const done = s.sender.submit('increment', 1);
  await clock.advance(10_000);
  await done;
  const gaps = times.slice(1).map((t, i) => t - times[i]);
  // floor(0.999 × 500·2^k) for k = 0, 1, 2, 3.
  assert.deepEqual(gaps, [499, 999, 1998, 3996]);
  assert.equal(new Set(s.net.calls.map((c) => c.headers['idempotency-key'])).size, 1, 'one key for every attempt');
});

test('5xx and 429 are retried with the same key; Retry-After is a lower bound on the wait', async () => {
  const { clock, net, sender } = setup([
    problem(503, 'The counter is busy.', { 'Retry-After': '3' }),
    problem(429, 'Too many changes.', { 'Retry-After': '2' }),
    problem(500, 'Internal error.'),
    ok(1, 1),
  ]);
  const done = sender.submit('increment', 1);
  await clock.advance(0);
  assert.equal(net.calls.length, 1);
  await clock.advance(2999);
  assert.equal(net.calls.length, 1, 'not before Retry-After: 3');
  await clock.advance(1);
  assert.equal(net.calls.length, 2);
  await clock.advance(1999);
  assert.equal(net.calls.length, 2, 'not before Retry-After: 2');
  await clock.advance(1);
  assert.equal(net.calls.length, 3);
  // No Retry-After: the backoff alone (0.5 × 500·2^2 = 1000 ms).
  await clock.advance(999);
  assert.equal(net.calls.length, 3);
  await clock.advance(1);
  assert.equal(net.calls.length, 4);
  assert.equal((await done).ok, true);
  assert.equal(new Set(net.calls.map((c) => c.headers['idempotency-key'])).size, 1);
});

test('a 4xx other than 429 is final: no retry, the problem detail comes back', async () => {
  for (const status of [400, 409, 413, 415, 422]) {
    const { clock, net, sender } = setup([problem(status, `Refused with ${status}.`)]);
    const outcome = await sender.submit('increment', 1);
    await clock.advance(60_000);
    assert.equal(net.calls.length, 1, `${status} is not retried`);
    assert.equal(outcome.ok, false);
    assert.equal(outcome.problem.status, status);
    assert.equal(outcome.problem.detail, `Refused with ${status}.`);
    assert.equal(sender.state().pending, 0);
  }
});

test('a 2xx whose body is unusable is retried (the replay brings the real answer)', async () => {
  const { clock, net, sender } = setup([new Response('<html>', { status: 200 }), ok(1, 1)]);
  const done = sender.submit('increment', 1);
  await clock.advance(250);
  const outcome = await done;
  assert.equal(outcome.ok, true);
  assert.equal(net.calls.length, 2);
  assert.equal(net.calls[1].headers['idempotency-key'], 'key-1');
});

test('a replayed answer is reported as such', async () => {
  const { sender } = setup([(r) => {
    const res = applied(r, { value: 1, version: 1 });
    res.headers.set('Idempotent-Replayed', 'true');
    return res;
  }]);
  assert.equal((await sender.submit('increment', 1)).replayed, true);
});

test('one request at a time, in click order', async () => {
  const releases = [];
  const hold = (value, version) => (r) => new Promise((resolve) => releases.push(() => resolve(applied(r, { value, version }))));
  const clock = createClock();
  const calls = [];
  let n = 0;
  const sender = createSender({
    fetch: (url, init) => {
      calls.push(JSON.parse(init.body).amount);
      return hold(calls.length, calls.length)({ url, body: JSON.parse(init.body), headers: { 'idempotency-key': init.headers['Idempotency-Key'] } });
    },
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    now: clock.now,
    random: () => 0.5,
    newKey: () => `k${++n}`,
    deadline: () => undefined,
  });
  const outcomes = [sender.submit('increment', 1), sender.submit('increment', 2), sender.submit('increment', 3)];
  await settle();
  assert.deepEqual(calls, [1], 'the second waits for the first');
  assert.equal(sender.state().pending, 3);
  releases.shift()();
  await settle();
  assert.deepEqual(calls, [1, 2]);
  releases.shift()();
  await settle();
  releases.shift()();
  const results = await Promise.all(outcomes);
  assert.deepEqual(calls, [1, 2, 3]);
  assert.deepEqual(results.map((r) => r.key), ['k1', 'k2', 'k3']);
});

test('the breaker opens after 5 consecutive failures, queues clicks, probes, and reopens on failure', async () => {
  let up = false;
  const { clock, net, states, sender } = setup([], {
    fallback: (r) => (up ? applied(r, { value: r.body.amount, version: 1 }) : new TypeError('Failed to fetch')),
  });
  const first = sender.submit('increment', 1);
  // Five attempts: at once, then after 250, 500, 1000 and 2000 ms (random 0.5).
  await clock.advance(250 + 500 + 1000 + 2000);
  assert.equal(net.calls.length, 5);
  let s = sender.state();
  assert.equal(s.breaker, 'open');
  assert.equal(s.resumeAt, clock.now() + COOL_DOWN);
  assert.equal(s.lastFailure.status, 0);

  // Clicks while open wait in the queue; nothing is sent during the cool-down.
  const second = sender.submit('decrement', 2);
  const third = sender.submit('increment', 3);
  assert.equal(sender.state().pending, 3);
  await clock.advance(COOL_DOWN - 1);
  assert.equal(net.calls.length, 5, 'silent while open');

  // Half-open: exactly one probe, the head of the queue with its own key.
  await clock.advance(1);
  assert.equal(net.calls.length, 6);
  assert.equal(net.calls[5].headers['idempotency-key'], 'key-1');
  assert.ok(states.some((x) => x.breaker === 'half-open'));
  // The probe failed: open again, for a whole cool-down.
  s = sender.state();
  assert.equal(s.breaker, 'open');
  await clock.advance(COOL_DOWN - 1);
  assert.equal(net.calls.length, 6);

  // The next probe succeeds: closed, and the queue drains in click order with the same keys.
  up = true;
  await clock.advance(1);
  const outcomes = await Promise.all([first, second, third]);
  assert.equal(sender.state().breaker, 'closed');
  assert.equal(sender.state().pending, 0);
  assert.equal(sender.state().failures, 0);
  const sent = net.calls.slice(6);
  assert.deepEqual(sent.map((c) => c.headers['idempotency-key']), ['key-1', 'key-2', 'key-3']);
  assert.deepEqual(sent.map((c) => [c.url, c.body.amount]), [
    ['/api/increment', 1],
    ['/api/decrement', 2],
    ['/api/increment', 3],
  ]);
  assert.deepEqual(outcomes.map((o) => [o.ok, o.key]), [[true, 'key-1'], [true, 'key-2'], [true, 'key-3']]);
});

test('a success before the threshold resets the failure count', async () => {
  const fail = () => new TypeError('Failed to fetch');
  const { clock, net, states, sender } = setup([fail, fail, fail, fail, ok(1, 1), fail, fail, fail, fail, ok(2, 2)]);
  const a = sender.submit('increment', 1);
  const b = sender.submit('increment', 1);
  await clock.advance(60_000);
  await Promise.all([a, b]);
  assert.equal(net.calls.length, 10);
  assert.ok(states.every((s) => s.breaker === 'closed'), 'never five failures in a row');
});

test('the cool-down honours a longer Retry-After', async () => {
  const busy = () => problem(503, 'Busy.', { 'Retry-After': '30' });
  const { clock, net, sender } = setup([], { fallback: busy });
  sender.submit('increment', 1);
  await clock.advance(4 * 30_000);
  assert.equal(net.calls.length, 5);
  assert.equal(sender.state().breaker, 'open');
  assert.equal(sender.state().resumeAt - clock.now(), 30_000);
  assert.equal(sender.state().lastFailure.detail, 'Busy.');
});

test('nudge() cuts a wait short; an open breaker goes straight to its probe', async () => {
  let up = false;
  const { clock, net, sender } = setup([], {
    fallback: (r) => (up ? applied(r, { value: 1, version: 1 }) : new TypeError('Failed to fetch')),
  });
  const done = sender.submit('increment', 1);
  await clock.advance(0);
  assert.equal(net.calls.length, 1);
  sender.nudge();
  await settle();
  assert.equal(net.calls.length, 2, 'retried at once');
  await clock.advance(60_000);
  assert.equal(sender.state().breaker, 'open');
  const before = net.calls.length;
  up = true;
  sender.nudge();
  assert.equal((await done).ok, true);
  assert.equal(net.calls.length, before + 1);
  assert.equal(sender.state().breaker, 'closed');
  // With nothing waiting, nudge does nothing.
  sender.nudge();
  await settle();
  assert.equal(net.calls.length, before + 1);
});

test('state reports pending clicks and when the next attempt is due', async () => {
  const { clock, sender } = setup([new TypeError('x'), ok(1, 1)]);
  const done = sender.submit('increment', 1);
  await clock.advance(0);
  const s = sender.state();
  assert.equal(s.pending, 1);
  assert.equal(s.failures, 1);
  assert.equal(s.resumeAt, clock.now() + 250);
  await clock.advance(250);
  await done;
  assert.deepEqual(sender.state(), { pending: 0, breaker: 'closed', resumeAt: null, failures: 0, lastFailure: null });
});

test('a 2xx after 4xx on one click does not disturb the next click', async () => {
  const { net, sender } = setup([problem(422, 'Key reused.'), ok(7, 1)]);
  const a = await sender.submit('increment', 1);
  const b = await sender.submit('increment', 7);
  assert.equal(a.ok, false);
  assert.equal(b.ok, true);
  assert.equal(net.calls.length, 2);
});

test('the JSON body is parsed even with the problem media type', async () => {
  const { sender } = setup([json({ title: 'Out of range', status: 409, detail: 'Too far.' }, 409)]);
  const outcome = await sender.submit('increment', 1);
  assert.equal(outcome.problem.detail, 'Too far.');
  assert.equal(outcome.problem.title, 'Out of range');
});

// ---- Surviving a reload: the saved queue ----

const job = (key, operation, amount) => ({ key, operation, amount });

test('restored jobs go out first, in order, with their original keys, before a new click', async () => {
  const saved = [job('saved-a', 'increment', 2), job('saved-b', 'decrement', 3)];
  const { net, sender } = setup([ok(2, 1), ok(-1, 2), ok(0, 3)], { restore: saved });
  assert.equal(sender.state().pending, 2, 'pending from the start');
  assert.equal(net.calls.length, 1, 'the first restored job is sent at once');
  const fresh = sender.submit('increment', 1);
  const outcomes = await Promise.all([...sender.restored, fresh]);
  assert.deepEqual(net.calls.map((c) => [c.headers['idempotency-key'], c.url, c.body.amount]), [
    ['saved-a', '/api/increment', 2],
    ['saved-b', '/api/decrement', 3],
    ['key-1', '/api/increment', 1],
  ]);
  assert.deepEqual(outcomes.map((o) => [o.ok, o.key, o.body.version]), [[true, 'saved-a', 1], [true, 'saved-b', 2], [true, 'key-1', 3]]);
  assert.equal(sender.restored.length, 2);
});

test('onQueue reports the unanswered jobs after a submit and after each answer, empty at the end', async () => {
  const reports = [];
  const { clock, sender } = setup([new TypeError('Failed to fetch'), ok(1, 1), ok(3, 2)], {
    restore: [job('saved-a', 'increment', 1)],
    onQueue: (jobs) => reports.push(jobs),
  });
  const fresh = sender.submit('increment', 2);
  assert.deepEqual(reports, [[job('saved-a', 'increment', 1), job('key-1', 'increment', 2)]]);
  // A failed attempt changes nothing in the queue: no report.
  await clock.advance(0);
  assert.equal(reports.length, 1);
  await clock.advance(250);
  await fresh;
  assert.deepEqual(reports, [
    [job('saved-a', 'increment', 1), job('key-1', 'increment', 2)],
    [job('key-1', 'increment', 2)],
    [],
  ]);
  // Plain copies: nothing of the sender's own bookkeeping leaks out.
  assert.deepEqual(Object.keys(reports[0][0]), ['key', 'operation', 'amount']);
});

test('a restored job that gets a refusal resolves with the problem, and the next one still goes', async () => {
  const { net, sender } = setup([problem(409, 'Too far.'), ok(5, 1)], {
    restore: [job('saved-a', 'increment', 9), job('saved-b', 'increment', 5)],
  });
  const [refused, applied5] = await Promise.all(sender.restored);
  assert.equal(refused.ok, false);
  assert.equal(refused.key, 'saved-a');
  assert.equal(refused.problem.status, 409);
  assert.equal(refused.problem.detail, 'Too far.');
  assert.equal(applied5.ok, true);
  assert.equal(net.calls.length, 2);
  assert.equal(sender.state().pending, 0);
});

test('without a saved queue nothing is sent and nothing is restored', async () => {
  const { net, sender } = setup([]);
  await settle();
  assert.deepEqual(sender.restored, []);
  assert.equal(net.calls.length, 0);
});

test('parseSavedQueue keeps well-formed jobs in order and drops everything else', () => {
  const good = [job('a', 'increment', 1), job('K.1_b:c-D', 'decrement', 1_000_000), job('z'.repeat(255), 'increment', Number.MAX_SAFE_INTEGER)];
  const bad = [
    null, 7, 'text', [], {},
    job('', 'increment', 1),
    job('has space', 'increment', 1),
    job('slash/no', 'increment', 1),
    job('ключ', 'increment', 1),
    job('z'.repeat(256), 'increment', 1),
    job(12, 'increment', 1),
    job('x', 'Increment', 1),
    job('x', 'set', 1),
    job('x', 'increment', 0),
    job('x', 'increment', -1),
    job('x', 'increment', 1.5),
    job('x', 'increment', '1'),
    job('x', 'increment', 2 ** 53),
    job('x', 'increment', NaN),
    { key: 'x', operation: 'increment' },
  ];
  const mixed = [bad[0], good[0], ...bad.slice(1, 10), good[1], ...bad.slice(10), good[2]];
  assert.deepEqual(parseSavedQueue(JSON.stringify(mixed)), good);
  // Extra fields are not carried along.
  assert.deepEqual(parseSavedQueue(JSON.stringify([{ ...good[0], attempts: 3, resolve: 1 }])), [good[0]]);
});

test('parseSavedQueue never throws: unreadable storage is an empty queue', () => {
  for (const text of [null, undefined, '', 'not json', '{"key":"a"}', '"[]"', '42', 'null', '[1,2', '{}', {}, Symbol('x')]) {
    assert.deepEqual(parseSavedQueue(text), [], String(text?.toString?.() ?? text));
  }
});

test('parseSavedQueue restores at most MAX_RESTORED jobs, the oldest first', () => {
  const many = Array.from({ length: MAX_RESTORED + 500 }, (_, i) => job(`k${i}`, 'increment', 1));
  const jobs = parseSavedQueue(JSON.stringify([{ bad: true }, ...many]));
  assert.equal(MAX_RESTORED, 1000);
  assert.equal(jobs.length, MAX_RESTORED);
  assert.equal(jobs[0].key, 'k0');
  assert.equal(jobs.at(-1).key, `k${MAX_RESTORED - 1}`);
});
