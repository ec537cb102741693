// Stand-ins for the browser's clock, network and WebSocket, so the client logic runs in Node
// with time under the test's control.

/** Settles every pending promise chain (setImmediate runs after all microtasks). */
export const settle = () => new Promise((resolve) => setImmediate(resolve));

/** A manual clock: timers fire only inside advance(), in due order. */
export function createClock(start = 1_000_000) {
  let now = start;
  let nextId = 1;
  const timers = new Map();
  return {
    now: () => now,
    setTimeout: (fn, ms) => {
      const id = nextId++;
      timers.set(id, { at: now + Math.max(0, ms), fn });
      return id;
    },
    clearTimeout: (id) => timers.delete(id),
    /** Pending timers' due times, soonest first. */
    due: () => [...timers.values()].map((t) => t.at).sort((a, b) => a - b),
    /** Moves time forward by `ms`, running each timer that falls due (and what it awaits). */
    async advance(ms) {
      const target = now + ms;
      await settle();
      for (;;) {
        const next = [...timers.entries()].sort((a, b) => a[1].at - b[1].at)[0];
        if (!next || next[1].at > target) break;
        timers.delete(next[0]);
        now = next[1].at;
        next[1].fn();
        await settle();
      }
      now = target;
    },
  };
}

/** A JSON response as the server sends it. */
export function json(body, status = 200, headers = {}) {
  const type = status >= 400 ? 'application/problem+json' : 'application/json';
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': type, ...headers } });
}

/** An RFC 9457 problem response. */
export function problem(status, detail, headers = {}) {
  return json({ type: `/problems/x`, title: `Status ${status}`, status, detail }, status, headers);
}

/**
 * A scripted fetch: each call takes the next step; a step is a Response, an Error (thrown, as
 * fetch does on a network failure) or a function of the request returning either. Once the
 * script runs out, `fallback` answers. Every call is recorded.
 */
export function scriptedFetch(steps, fallback = () => new Error('offline')) {
  const calls = [];
  const fetch = async (url, init = {}) => {
    const request = {
      url,
      method: init.method ?? 'GET',
      headers: Object.fromEntries(Object.entries(init.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
      body: init.body === undefined ? undefined : JSON.parse(init.body),
    };
    calls.push(request);
    let step = steps.length > 0 ? steps.shift() : fallback;
    if (typeof step === 'function') step = step(request);
    if (step instanceof Error) throw step;
    return step;
  };
  return { fetch, calls };
}

/** The 200 body of a mutation, as the server builds it. */
export function applied(request, { value, version, previous_value = value - request.body.amount }) {
  return json({
    value,
    version,
    previous_value,
    operation: request.url.endsWith('increment') ? 'increment' : 'decrement',
    amount: request.body.amount,
    request_id: request.headers['idempotency-key'],
    applied_at: '2026-01-01T00:00:00.000Z',
  });
}

/** A WebSocket double: tests drive its events; every instance is kept in `sockets`. */
export function fakeWebSocketClass() {
  const sockets = [];
  class FakeWebSocket {
    constructor(url) {
      this.url = url;
      this.sent = [];
      this.closed = false;
      sockets.push(this);
    }
    send(data) {
      this.sent.push(data);
    }
    close() {
      this.closed = true;
    }
    // Test controls, named after what the server/network does.
    serverOpens() {
      this.onopen?.({});
    }
    serverSends(message) {
      this.onmessage?.({ data: typeof message === 'string' ? message : JSON.stringify(message) });
    }
    serverCloses() {
      this.closed = true;
      this.onclose?.({ code: 1006 });
    }
  }
  return { FakeWebSocket, sockets };
}

/** A seeded PRNG (mulberry32): random but repeatable. */
export function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
