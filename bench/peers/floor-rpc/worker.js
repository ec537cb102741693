// The object floor, called through the platform's RPC: the same object as ../floor (reads from
// memory, each POST one single-row UPDATE, a small update to every hibernatable socket), but the
// Worker calls its methods (`read()`, `increment()`) instead of forwarding the request, and
// builds the response from the string each returns. A method call costs the runtime less than a
// request whose response comes back through the Worker, so this is the lower of the two floors:
// the least a design that makes one object call per request can cost on this runtime.
import { DurableObject } from 'cloudflare:workers';

const JSON_HEADERS = { 'content-type': 'application/json' };

export class Counter extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec('CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY, version INTEGER NOT NULL)');
    this.sql.exec('INSERT OR IGNORE INTO counter (id, version) VALUES (1, 0)');
    this.version = this.sql.exec('SELECT version FROM counter WHERE id = 1').one().version;
  }

  fetch() {
    const [client, server] = Object.values(new WebSocketPair());
    this.ctx.acceptWebSocket(server);
    server.send(JSON.stringify({ type: 'snapshot', value: this.version, version: this.version }));
    return new Response(null, { status: 101, webSocket: client });
  }

  read() {
    return `{"value":${this.version},"version":${this.version}}`;
  }

  increment() {
    const version = ++this.version;
    this.sql.exec('UPDATE counter SET version = ? WHERE id = 1', version);
    const message = JSON.stringify({ type: 'update', value: version, version });
    for (const ws of this.ctx.getWebSockets()) {
      try {
        ws.send(message);
      } catch {
        // a closing socket: not the broadcast's problem
      }
    }
    return this.read();
  }
}

export default {
  async fetch(request, env) {
    const stub = env.COUNTER.get(env.COUNTER.idFromName('global'));
    if (request.headers.get('Upgrade')?.toLowerCase() === 'websocket') return stub.fetch(request);
    const body = request.method === 'POST' ? await stub.increment() : await stub.read();
    return new Response(body, { headers: JSON_HEADERS });
  },
};
