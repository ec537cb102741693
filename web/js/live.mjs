/**
 * The live stream: one WebSocket that passes on every change in version order, across drops.
 *
 * The server numbers changes 1, 2, 3, … and sends a snapshot first, then each change. This
 * module remembers the last version it passed on. When the socket drops it reconnects with
 * `?since=<that version>` and the server replays exactly the changes missed meanwhile (or a
 * fresh snapshot when too many were missed). It also checks the numbering itself: a version it
 * already passed on is dropped, and a jump ahead means something was lost, so it reconnects
 * from the last version it has rather than show a history with a hole in it.
 *
 * Reconnects back off exponentially with full jitter, so a restarted server is not hit by
 * every page at once. The backoff starts over only once data has come through a socket, not
 * merely when one opened: a proxy that accepts and then drops connections must not cause a
 * tight reconnect loop. A socket can also die without closing (a sleeping laptop, a NAT that
 * forgot the flow), so a `ping` goes out as soon as a socket opens and `pingEvery` ms after
 * each `pong`; a `pong` not back within `pongWithin` ms means the socket is dead. While the
 * browser says it is offline nothing is tried.
 */
import { backoffDelay } from './backoff.mjs';

/**
 * @typedef {'connecting' | 'live' | 'reconnecting' | 'offline'} LinkState
 * @typedef {{state: LinkState, retryAt: number | null}} LinkStatus `retryAt`: when the next
 *   attempt is due, while reconnecting.
 */

/**
 * @param {object} deps
 * @param {string} deps.url the stream's ws:/wss: URL, without a query
 * @param {typeof WebSocket} deps.WebSocket
 * @param {(fn: () => void, ms: number) => any} deps.setTimeout
 * @param {(id: any) => void} deps.clearTimeout
 * @param {() => number} deps.now epoch milliseconds
 * @param {() => number} deps.random uniform in [0, 1)
 * @param {(message: object) => void} deps.onMessage snapshots and updates, in order, once each
 * @param {(status: LinkStatus) => void} deps.onStatus
 * @param {number} [deps.base] ceiling of the first reconnect delay, ms; doubles per attempt
 * @param {number} [deps.cap] the largest ceiling, ms
 * @param {number} [deps.pingEvery] pause between a pong and the next ping, ms
 * @param {number} [deps.pongWithin] how long a pong may take, ms
 */
export function createLive({
  url,
  WebSocket,
  setTimeout,
  clearTimeout,
  now,
  random,
  onMessage,
  onStatus,
  base = 1000,
  cap = 30_000,
  pingEvery = 25_000,
  pongWithin = 10_000,
}) {
  let socket = null;
  let last = null;
  let attempt = 0;
  let online = true;
  let retryTimer = null;
  let pingTimer = null;
  let pongTimer = null;

  function connect() {
    clearTimers();
    const ws = new WebSocket(last === null ? url : `${url}?since=${last}`);
    socket = ws;
    onStatus({ state: 'connecting', retryAt: null });
    ws.onopen = () => {
      onStatus({ state: 'live', retryAt: null });
      ping();
    };
    ws.onmessage = (event) => receive(event.data);
    // An error event is always followed by close; close alone decides.
    ws.onclose = drop;
  }

  function receive(data) {
    attempt = 0;
    if (data === 'pong') {
      if (pongTimer === null) return;
      clearTimeout(pongTimer);
      pongTimer = null;
      schedulePing();
      return;
    }
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (message?.type === 'update') {
      if (last !== null && message.version <= last) return;
      if (last !== null && message.version !== last + 1) {
        drop();
        return;
      }
    } else if (message?.type !== 'snapshot') {
      // Only `error` remains, the answer to a message other than ping; this page sends none.
      return;
    }
    // A snapshot restarts the numbering, even below `last` (the server's word on its own
    // sequence); whether the page shows it is the reconciler's decision.
    last = message.version;
    onMessage(message);
  }

  function ping() {
    pingTimer = null;
    socket.send('ping');
    pongTimer = setTimeout(drop, pongWithin);
  }

  function schedulePing() {
    pingTimer = setTimeout(ping, pingEvery);
  }

  /** Gives up the current socket and, when online, schedules the next attempt. */
  function drop() {
    close();
    if (!online) {
      onStatus({ state: 'offline', retryAt: null });
      return;
    }
    const delay = backoffDelay(attempt, { base, cap }, random);
    attempt += 1;
    retryTimer = setTimeout(connect, delay);
    onStatus({ state: 'reconnecting', retryAt: now() + delay });
  }

  function close() {
    clearTimers();
    const ws = socket;
    socket = null;
    if (ws === null) return;
    ws.onopen = ws.onmessage = ws.onclose = null;
    ws.close();
  }

  function clearTimers() {
    for (const id of [retryTimer, pingTimer, pongTimer]) if (id !== null) clearTimeout(id);
    retryTimer = pingTimer = pongTimer = null;
  }

  /**
   * Follows the browser's online/offline events: offline closes the socket and stops
   * retrying; online connects at once.
   * @param {boolean} value
   */
  function setOnline(value) {
    if (value === online) return;
    online = value;
    if (online) {
      attempt = 0;
      connect();
    } else {
      drop();
    }
  }

  /** Opens the stream (or reports offline). */
  function start(initiallyOnline) {
    online = initiallyOnline;
    if (online) connect();
    else onStatus({ state: 'offline', retryAt: null });
  }

  return { start, setOnline };
}
