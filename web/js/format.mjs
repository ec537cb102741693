/**
 * How numbers, changes, times and the amount field read, as pure functions: the view only
 * puts their results on the page.
 */

/** The largest amount one click may move the counter by (the API's limit). */
export const MAX_AMOUNT = 1_000_000;

const grouped = new Intl.NumberFormat('en-US');

/** `1234567` → `1,234,567`; negatives get a true minus sign (−), which reads better large. */
export function formatNumber(n) {
  return grouped.format(n).replace('-', '\u2212');
}

/**
 * One change for the activity list: a short badge ("+5", "set"), a sentence ("Increment by
 * 5", "Set to 1,000") and which way the value moved.
 * @param {{operation: string, amount: number, previous_value: number, value: number}} change
 * @returns {{badge: string, text: string, direction: 'up' | 'down' | 'flat'}}
 */
export function describeChange({ operation, amount, previous_value, value }) {
  const d = value - previous_value;
  const direction = d > 0 ? 'up' : d < 0 ? 'down' : 'flat';
  const by = formatNumber(amount);
  switch (operation) {
    case 'increment':
      return { badge: `+${by}`, text: `Increment by ${by}`, direction };
    case 'decrement':
      return { badge: `\u2212${by}`, text: `Decrement by ${by}`, direction };
    case 'reset':
      return { badge: 'reset', text: 'Reset to 0', direction };
    default:
      // "set", and any operation added to the server later: what it led to is what matters.
      return { badge: operation, text: `Set to ${formatNumber(value)}`, direction };
  }
}

/**
 * How long ago `iso` was, compactly: "just now", "12s ago", "5m ago", "3h ago", "2d ago".
 * Clocks differ between server and browser, so a time slightly in the future is "just now".
 * @param {string | null} iso
 * @param {number} now epoch milliseconds
 */
export function timeAgo(iso, now) {
  const seconds = Math.floor((now - Date.parse(iso ?? '')) / 1000);
  if (Number.isNaN(seconds)) return '';
  if (seconds < 5) return 'just now';
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86_400)}d ago`;
}

/**
 * Reads the amount field: a whole number from 1 to MAX_AMOUNT; digit grouping with commas,
 * spaces or underscores is fine.
 * @returns {{ok: true, amount: number} | {ok: false, message: string}}
 */
export function parseAmount(text) {
  const digits = String(text).replace(/[\s,_]/g, '');
  const n = /^\d{1,7}$/.test(digits) ? Number(digits) : NaN;
  return n >= 1 && n <= MAX_AMOUNT
    ? { ok: true, amount: n }
    : { ok: false, message: `Enter a whole number from 1 to ${formatNumber(MAX_AMOUNT)}.` };
}
