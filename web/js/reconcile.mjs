/**
 * What the page believes about the counter, merged from sources that arrive in any order: the
 * live stream, the answers to this page's own clicks, and reads of /api/value and /api/audit.
 *
 * The server's version number is the only clock. A reading replaces the shown value only when
 * its version is newer than the one shown, so a slow answer or a late replay can never move
 * the number backwards. Changes are kept by version, so one change seen from two sources is
 * one entry, and the history stays in version order whatever order it arrived in.
 */

/**
 * @typedef {{value: number, version: number, at: string | null}} Reading
 * @typedef {{version: number, operation: string, amount: number, previous_value: number,
 *   value: number, at: string}} Change
 */

/** @param {number} keep how many of the latest changes to remember */
export function createModel(keep) {
  /** @type {Reading | null} */
  let current = null;
  /** @type {Change[]} ascending by version */
  let changes = [];

  /**
   * Adopts `reading` if it is newer than what is shown.
   * @param {Reading} reading
   * @returns {boolean} whether the shown reading changed
   */
  function observe({ value, version, at = null }) {
    if (current !== null && version <= current.version) return false;
    current = { value, version, at };
    return true;
  }

  /**
   * Remembers one applied change (an update message, an audit entry or a click's answer,
   * whose time is `applied_at`) and adopts its result if newer.
   * @returns {boolean} whether the shown reading changed
   */
  function record(change) {
    const entry = {
      version: change.version,
      operation: change.operation,
      amount: change.amount,
      previous_value: change.previous_value,
      value: change.value,
      at: change.at ?? change.applied_at,
    };
    if (!changes.some((c) => c.version === entry.version)) {
      changes.push(entry);
      changes.sort((a, b) => a.version - b.version);
      changes = changes.slice(-keep);
    }
    return observe(entry);
  }

  return {
    observe,
    record,
    /** The newest reading, or null before the first. */
    get current() {
      return current;
    },
    /** The remembered changes, oldest first. */
    get changes() {
      return changes;
    },
  };
}
