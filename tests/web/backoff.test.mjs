// Full-jitter backoff and Retry-After parsing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, retryAfterMs, MAX_RETRY_AFTER_MS } from '../../web/js/backoff.mjs';
import { seededRandom } from './fakes.mjs';

test('every delay is in [0, min(cap, base·2^attempt)) and they are spread out', () => {
  const random = seededRandom(7);
  const limits = { base: 500, cap: 16_000 };
  for (let attempt = 0; attempt < 10; attempt++) {
    const ceiling = Math.min(limits.cap, 500 * 2 ** attempt);
    const delays = Array.from({ length: 500 }, () => backoffDelay(attempt, limits, random));
    for (const d of delays) {
      assert.ok(Number.isInteger(d) && d >= 0 && d < ceiling, `${d} within [0, ${ceiling})`);
    }
    // Jittered, not fixed: the sample covers most of the range.
    assert.ok(Math.min(...delays) < ceiling * 0.1, 'some early retries');
    assert.ok(Math.max(...delays) > ceiling * 0.9, 'some late retries');
  }
});

test('the ceiling doubles per attempt up to the cap', () => {
  const top = () => 0.999999;
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, { base: 1000, cap: 30_000 }, top)),
    [999, 1999, 3999, 7999, 15999, 29999, 29999],
  );
  assert.equal(backoffDelay(3, { base: 1000, cap: 30_000 }, () => 0), 0);
});

test('Retry-After: seconds or an HTTP date, capped; absent or junk is null', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.equal(retryAfterMs('3', now), 3000);
  assert.equal(retryAfterMs(' 0 ', now), 0);
  assert.equal(retryAfterMs('Thu, 01 Jan 2026 00:00:05 GMT', now), 5000);
  assert.equal(retryAfterMs('Wed, 31 Dec 2025 23:59:00 GMT', now), 0, 'a date in the past means now');
  assert.equal(retryAfterMs('86400', now), MAX_RETRY_AFTER_MS);
  assert.equal(retryAfterMs(null, now), null);
  assert.equal(retryAfterMs('', now), null);
  assert.equal(retryAfterMs('soon', now), null);
  assert.equal(retryAfterMs('-5', now), null);
});
