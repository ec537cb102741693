// Reconciliation: the server's version orders everything; nothing moves the value backwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createModel } from '../../web/js/reconcile.mjs';
import { seededRandom } from './fakes.mjs';

const change = (version, value, extra = {}) => ({
  version,
  value,
  previous_value: value - 1,
  operation: 'increment',
  amount: 1,
  at: `2026-01-01T00:00:${String(version % 60).padStart(2, '0')}.000Z`,
  ...extra,
});

test('a newer reading replaces the shown one; an older or equal one never does', () => {
  const model = createModel(10);
  assert.equal(model.current, null);
  assert.equal(model.observe({ value: 10, version: 5, at: null }), true);
  assert.equal(model.observe({ value: 3, version: 4, at: null }), false);
  assert.equal(model.observe({ value: 99, version: 5, at: null }), false);
  assert.deepEqual(model.current, { value: 10, version: 5, at: null });
  assert.equal(model.observe({ value: 12, version: 7, at: 'x' }), true);
  assert.deepEqual(model.current, { value: 12, version: 7, at: 'x' });
});

test('version 0 is a reading like any other (a fresh counter)', () => {
  const model = createModel(10);
  assert.equal(model.observe({ value: 0, version: 0 }), true);
  assert.deepEqual(model.current, { value: 0, version: 0, at: null });
});

test('in any arrival order, the result is the reading with the highest version', () => {
  const random = seededRandom(42);
  for (let round = 0; round < 200; round++) {
    const readings = Array.from({ length: 12 }, (_, i) => ({ value: Math.floor(random() * 1000), version: i + 1 }));
    const shuffled = [...readings].sort(() => random() - 0.5);
    const model = createModel(10);
    let highest = -1;
    for (const r of shuffled) {
      model.observe(r);
      highest = Math.max(highest, r.version);
      assert.equal(model.current.version, highest, 'never goes back');
    }
    assert.deepEqual(model.current, { ...readings[11], at: null });
  }
});

test('record keeps changes once each, in version order, whatever the sources and order', () => {
  const model = createModel(10);
  model.record(change(3, 3));
  model.record(change(1, 1));
  model.record(change(2, 2));
  model.record(change(3, 3));
  assert.deepEqual(model.changes.map((c) => c.version), [1, 2, 3]);
  assert.deepEqual(model.current, { value: 3, version: 3, at: change(3, 3).at });
});

test('a click answer (applied_at) and an update (at) for one version are one entry', () => {
  const model = createModel(10);
  const answer = { value: 5, version: 1, previous_value: 0, operation: 'increment', amount: 5, request_id: 'k', applied_at: '2026-01-01T00:00:01.000Z' };
  assert.equal(model.record(answer), true);
  assert.equal(model.record({ type: 'update', ...change(1, 5, { previous_value: 0, amount: 5 }) }), false);
  assert.equal(model.changes.length, 1);
  assert.deepEqual(model.changes[0], {
    version: 1,
    operation: 'increment',
    amount: 5,
    previous_value: 0,
    value: 5,
    at: '2026-01-01T00:00:01.000Z',
  });
});

test('only the latest `keep` changes are remembered', () => {
  const model = createModel(3);
  for (let v = 1; v <= 6; v++) model.record(change(v, v));
  assert.deepEqual(model.changes.map((c) => c.version), [4, 5, 6]);
  model.record(change(2, 2));
  assert.deepEqual(model.changes.map((c) => c.version), [4, 5, 6], 'an old straggler does not displace newer ones');
  assert.equal(model.current.version, 6);
});

test('an older change fills the history but does not move the value back', () => {
  const model = createModel(10);
  model.observe({ value: 50, version: 9 });
  assert.equal(model.record(change(8, 49)), false);
  assert.deepEqual(model.current, { value: 50, version: 9, at: null });
  assert.deepEqual(model.changes.map((c) => c.version), [8]);
});
