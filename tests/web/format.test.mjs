// Formatting, the amount field's rules and the chart's geometry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeChange, formatNumber, parseAmount, timeAgo, MAX_AMOUNT } from '../../web/js/format.mjs';
import { chartGeometry } from '../../web/js/chart.mjs';

test('numbers are grouped, negatives use a true minus', () => {
  assert.equal(formatNumber(0), '0');
  assert.equal(formatNumber(1234567), '1,234,567');
  assert.equal(formatNumber(-42), '\u221242');
  assert.equal(formatNumber(-9007199254740991), '\u22129,007,199,254,740,991');
});

test('changes read as words, including the admin operations', () => {
  assert.deepEqual(describeChange({ operation: 'increment', amount: 1000, previous_value: 0, value: 1000 }), {
    badge: '+1,000', text: 'Increment by 1,000', direction: 'up',
  });
  assert.deepEqual(describeChange({ operation: 'decrement', amount: 5, previous_value: 0, value: -5 }), {
    badge: '\u22125', text: 'Decrement by 5', direction: 'down',
  });
  assert.deepEqual(describeChange({ operation: 'set', amount: 7, previous_value: 9, value: 7 }), {
    badge: 'set', text: 'Set to 7', direction: 'down',
  });
  assert.deepEqual(describeChange({ operation: 'reset', amount: 0, previous_value: -3, value: 0 }), {
    badge: 'reset', text: 'Reset to 0', direction: 'up',
  });
  assert.equal(describeChange({ operation: 'reset', amount: 0, previous_value: 0, value: 0 }).direction, 'flat');
});

test('relative times', () => {
  const t0 = Date.parse('2026-01-01T12:00:00.000Z');
  const at = (s) => new Date(t0 - s * 1000).toISOString();
  assert.equal(timeAgo(at(0), t0), 'just now');
  assert.equal(timeAgo(at(-30), t0), 'just now', 'a server clock ahead of ours');
  assert.equal(timeAgo(at(4.9), t0), 'just now');
  assert.equal(timeAgo(at(5), t0), '5s ago');
  assert.equal(timeAgo(at(59), t0), '59s ago');
  assert.equal(timeAgo(at(60), t0), '1m ago');
  assert.equal(timeAgo(at(3599), t0), '59m ago');
  assert.equal(timeAgo(at(3600), t0), '1h ago');
  assert.equal(timeAgo(at(86_400 * 3), t0), '3d ago');
  assert.equal(timeAgo(null, t0), '');
  assert.equal(timeAgo('not a time', t0), '');
});

test('the amount is a whole number from 1 to 1,000,000', () => {
  for (const [text, amount] of [['1', 1], [' 7 ', 7], ['1,000', 1000], ['1 000 000', MAX_AMOUNT], ['25_000', 25000], ['007', 7]]) {
    assert.deepEqual(parseAmount(text), { ok: true, amount }, text);
  }
  for (const text of ['', '0', '-5', '1.5', '1e3', 'abc', '1000001', '99999999999', '+3', '0x10']) {
    const r = parseAmount(text);
    assert.equal(r.ok, false, text);
    assert.equal(r.message, 'Enter a whole number from 1 to 1,000,000.');
  }
});

test('chart: nothing to draw without changes', () => {
  assert.equal(chartGeometry([], { width: 600, height: 180, pad: 12 }), null);
});

test('chart: the first change also shows where it started; extremes touch the padded edges', () => {
  const changes = [
    { version: 4, previous_value: 10, value: 20 },
    { version: 5, previous_value: 20, value: 0 },
    { version: 6, previous_value: 0, value: 15 },
  ];
  const g = chartGeometry(changes, { width: 600, height: 180, pad: 12 });
  // Points at versions 3..6 spread over x = 12..588; value 20 at the top, 0 at the bottom.
  assert.equal(g.line, 'M12 90L204 12L396 168L588 51');
  assert.equal(g.area, `${g.line}L588 180L12 180Z`);
  assert.deepEqual(g.end, { x: 588, y: 51 });
  assert.equal(g.low, 0);
  assert.equal(g.high, 20);
});

test('chart: a flat history runs through the middle; gaps in versions keep their spacing', () => {
  const g = chartGeometry([
    { version: 1, previous_value: 5, value: 5 },
    { version: 4, previous_value: 5, value: 5 },
  ], { width: 100, height: 50, pad: 10 });
  assert.equal(g.line, 'M10 25L30 25L90 25');
});
