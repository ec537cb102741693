/**
 * Retry timing shared by the click sender and the live connection.
 *
 * Full jitter: a delay drawn uniformly from [0, min(cap, base·2^attempt)). When a server
 * hiccups, every open page fails at the same moment; fixed or merely growing delays would
 * bring them all back at the same moment too. Random delays spread the comeback out.
 */

/** The longest Retry-After honoured, so a bogus header cannot stall the page for hours. */
export const MAX_RETRY_AFTER_MS = 5 * 60 * 1000;

/**
 * Milliseconds to wait before retry number `attempt` (0 for the first retry).
 * @param {number} attempt
 * @param {{base: number, cap: number}} limits
 * @param {() => number} random uniform in [0, 1), injectable for tests
 */
export function backoffDelay(attempt, { base, cap }, random) {
  return Math.floor(random() * Math.min(cap, base * 2 ** attempt));
}

/**
 * A Retry-After header (delta-seconds or HTTP-date) in milliseconds from `now`, capped at
 * MAX_RETRY_AFTER_MS; null when absent or unreadable.
 * @param {string | null} header
 * @param {number} now epoch milliseconds
 */
export function retryAfterMs(header, now) {
  const text = (header ?? '').trim();
  if (text === '') return null;
  // An HTTP-date always ends in GMT; anything else that is not plain seconds is junk.
  const ms = /^\d+$/.test(text) ? Number(text) * 1000 : /GMT$/.test(text) ? Date.parse(text) - now : NaN;
  return Number.isNaN(ms) ? null : Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS);
}
