// The object floor: the least a Worker can do when every request goes through one SQLite-backed
// Durable Object, which is what a single, strongly consistent counter needs. The Worker forwards
// each request to the object untouched; the object answers a read from memory (no SQL), makes a
// POST one single-row UPDATE (committed before the answer leaves, like every object write) and
// sends a small update to every hibernatable socket and every event stream (`GET /api/events`,
// the runtime's identity stream, the update's bytes encoded once). No validation, no idempotency keys, no
// audit trail, no routing beyond what the benchmark calls. Nothing that does a counter's whole
// job through one object can cost less per request on the same runtime, so the ratios to it show
// how much of a counter's cost is its own work and how much the runtime's path to the object.
import { DurableObject } from 'cloudflare:workers';

const JSON_HEADERS = { 'content-type': 'application/json' };
const ENCODER = new TextEncoder();

export class Counter extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec('CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY, version INTEGER NOT NULL)');
    this.sql.exec('INSERT OR IGNORE INTO counter (id, version) VALUES (1, 0)');
    this.version = this.sql.exec('SELECT version FROM counter WHERE id = 1').one().version;
    this.streams = new Set(); // event streams' writers (GET /api/events)
  }

  /** An event stream: the runtime's own byte stream, one write per event per stream. */
  events() {
    const { readable, writable } = new IdentityTransformStream();
    const writer = writable.getWriter();
    const data = JSON.stringify({ type: 'snapshot', value: this.version, version: this.version });
    writer.write(ENCODER.encode(`retry: 2000\n\nevent: snapshot\nid: ${this.version}\ndata: ${data}\n\n`)).catch(() => {});
    this.streams.add(writer);
    return new Response(readable, { headers: { 'content-type': 'text/event-stream' } });
  }

  fetch(request) {
    if (request.method === 'GET' && new URL(request.url).pathname === '/api/events') return this.events();
    if (request.headers.get('Upgrade')?.toLowerCase() === 'websocket') {
      const [client, server] = Object.values(new WebSocketPair());
      this.ctx.acceptWebSocket(server);
      server.send(JSON.stringify({ type: 'snapshot', value: this.version, version: this.version }));
      return new Response(null, { status: 101, webSocket: client });
    }
    if (request.method === 'POST') {
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
      if (this.streams.size) {
        const event = `event: update\nid: ${version}\ndata: ${message}\n\n`;
        const chunk = ENCODER.encode(event);
        for (const writer of this.streams) {
          writer.write(chunk).catch(() => this.streams.delete(writer));
        }
      }
    }
    return new Response(`{"value":${this.version},"version":${this.version}}`, { headers: JSON_HEADERS });
  }
}

export default {
  fetch(request, env) {
    return env.COUNTER.get(env.COUNTER.idFromName('global')).fetch(request);
  },
};
