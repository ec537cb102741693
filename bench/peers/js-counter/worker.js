// The same counter written in JavaScript the way the platform's examples do it: a fair-to-generous
// reference. One SQLite-backed Durable Object, transactionSync around counter + audit row +
// idempotency row, hibernatable WebSocket broadcast. It validates less than our API contract
// requires (no key syntax or body-size checks, no CORS, no logging), so it does less work per
// request than our Worker; beating it is a high bar, not a straw man.
//
// Worker:  /api/*  ->  ONE SQLite-backed Durable Object, env.COUNTER.idFromName('global').
// DO API:  GET  /api/value      -> {value, version}
//          POST /api/increment  -> {value, version}   optional JSON body {amount}, optional Idempotency-Key
//          POST /api/decrement  -> {value, version}   (same)
//          GET  /api/ws         -> hibernatable WebSocket; first message {type:'snapshot', value, version};
//                                  then {type:'update', value, version} after every mutation.
//                                  "ping" is answered "pong" by the runtime (auto-response).
//          GET  /api/audit      -> {count, idempotency, latest[]}   (read by the benchmark's integrity check)
//
// Deploy needs: [[durable_objects.bindings]] name="COUNTER" class_name="Counter" and
// [[migrations]] tag="v1" new_sqlite_classes=["Counter"].
import { DurableObject } from 'cloudflare:workers';

const JSON_HEADERS = { 'content-type': 'application/json' };
const json = (body, status = 200, extra) =>
  new Response(typeof body === 'string' ? body : JSON.stringify(body), {
    status,
    headers: extra ? { ...JSON_HEADERS, ...extra } : JSON_HEADERS,
  });

export class Counter extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    // The constructor is synchronous and SQL exec is synchronous, so no blockConcurrencyWhile needed.
    this.sql.exec(`CREATE TABLE IF NOT EXISTS counter (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      value INTEGER NOT NULL,
      version INTEGER NOT NULL,
      updated_at TEXT)`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS audit (
      version INTEGER PRIMARY KEY,
      operation TEXT,
      amount INTEGER,
      previous_value INTEGER,
      value INTEGER,
      request_id TEXT,
      at TEXT)`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS idempotency (
      key TEXT PRIMARY KEY,
      response TEXT,
      created_at INTEGER)`);
    this.sql.exec(
      `INSERT OR IGNORE INTO counter (id, value, version, updated_at) VALUES (1, 0, 0, ?)`,
      new Date().toISOString(),
    );
    // Answered by the runtime without waking (or even running) the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('ping', 'pong'));
  }

  readCounter() {
    return this.sql.exec('SELECT value, version FROM counter WHERE id = 1').one();
  }

  async fetch(request) {
    const url = new URL(request.url);
    const path = url.pathname;
    const method = request.method;

    if (path === '/api/value' && method === 'GET') {
      const { value, version } = this.readCounter();
      return json({ value, version });
    }
    if ((path === '/api/increment' || path === '/api/decrement') && method === 'POST') {
      return this.mutate(request, path === '/api/increment' ? 'increment' : 'decrement');
    }
    if (path === '/api/ws' && method === 'GET') {
      if (request.headers.get('Upgrade')?.toLowerCase() !== 'websocket') {
        return new Response('expected Upgrade: websocket', { status: 426 });
      }
      const [client, server] = Object.values(new WebSocketPair());
      this.ctx.acceptWebSocket(server); // hibernatable: the runtime owns the socket
      const { value, version } = this.readCounter();
      server.send(JSON.stringify({ type: 'snapshot', value, version }));
      return new Response(null, { status: 101, webSocket: client });
    }
    if (path === '/api/audit' && method === 'GET') {
      const count = this.sql.exec('SELECT count(*) AS n FROM audit').one().n;
      const idem = this.sql.exec('SELECT count(*) AS n FROM idempotency').one().n;
      const latest = this.sql.exec('SELECT * FROM audit ORDER BY version DESC LIMIT 20').toArray();
      return json({ count, idempotency: idem, latest });
    }
    return json({ error: 'not found' }, 404);
  }

  async mutate(request, operation) {
    // 1. Parse the optional body. This is the only await; everything after it is synchronous,
    //    so the idempotency check + transaction cannot interleave with another request.
    let amount = 1;
    if (request.body) {
      const text = await request.text();
      if (text.trim() !== '') {
        let body;
        try {
          body = JSON.parse(text);
        } catch {
          return json({ error: 'body must be JSON' }, 400);
        }
        if (body && body.amount !== undefined) amount = body.amount;
      }
    }
    if (!Number.isSafeInteger(amount) || amount < 1) {
      return json({ error: 'amount must be a positive integer' }, 400);
    }

    // 2. Idempotency: a replayed key returns the stored response unchanged.
    const key = request.headers.get('Idempotency-Key');
    if (key) {
      const hit = this.sql.exec('SELECT response FROM idempotency WHERE key = ?', key).toArray();
      if (hit.length) return json(hit[0].response, 200, { 'idempotent-replayed': 'true' });
    }

    // 3. One synchronous SQLite transaction: counter row + audit row + idempotency row.
    const delta = operation === 'increment' ? amount : -amount;
    const requestId = request.headers.get('cf-ray') || crypto.randomUUID();
    let result;
    try {
      result = this.ctx.storage.transactionSync(() => {
        const prev = this.readCounter();
        const value = prev.value + delta;
        if (!Number.isSafeInteger(value)) {
          throw new RangeError('counter would leave the JS safe-integer range');
        }
        const version = prev.version + 1;
        const at = new Date().toISOString();
        this.sql.exec(
          'UPDATE counter SET value = ?, version = ?, updated_at = ? WHERE id = 1',
          value, version, at,
        );
        this.sql.exec(
          `INSERT INTO audit (version, operation, amount, previous_value, value, request_id, at)
           VALUES (?, ?, ?, ?, ?, ?, ?)`,
          version, operation, amount, prev.value, value, requestId, at,
        );
        const response = JSON.stringify({ value, version });
        if (key) {
          this.sql.exec(
            'INSERT INTO idempotency (key, response, created_at) VALUES (?, ?, ?)',
            key, response, Date.now(),
          );
        }
        return { value, version, response };
      });
    } catch (e) {
      // transactionSync rolled everything back.
      return json({ error: String(e?.message ?? e) }, e instanceof RangeError ? 409 : 500);
    }

    // 4. Fan out after commit (output gate: clients never see an update that could be lost).
    const msg = JSON.stringify({ type: 'update', value: result.value, version: result.version });
    for (const ws of this.ctx.getWebSockets()) {
      try {
        ws.send(msg);
      } catch {
        // socket closing; ignore
      }
    }
    return json(result.response);
  }

  // Hibernation handlers (the object may have been evicted and re-constructed in between).
  async webSocketMessage(ws, message) {
    if (message === 'get') {
      const { value, version } = this.readCounter();
      ws.send(JSON.stringify({ type: 'snapshot', value, version }));
    }
  }

  async webSocketClose(ws, code, reason) {
    // Complete the close handshake; 1005/1006 are reserved and cannot be sent.
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
    } catch {
      // already closed
    }
  }

  async webSocketError(ws) {
    try {
      ws.close(1011, 'error');
    } catch {
      // already closed
    }
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (!url.pathname.startsWith('/api/')) return new Response('not found', { status: 404 });
    const stub = env.COUNTER.get(env.COUNTER.idFromName('global'));
    return stub.fetch(request); // forwards Upgrade: websocket unchanged
  },
};
