// The object floor with group commit: the floor's object (../floor: reads from memory, each
// POST one single-row UPDATE), called the way our Worker batches (src/edge/batch.rs), in the
// least JavaScript. A request that finds fewer than K calls of this isolate in flight, and
// nobody waiting, goes alone and its response passes through unread; otherwise it joins the
// open group, whose first request (its leader) sends the whole group as one method call
// (`batch(items)`) once a call in flight comes back, and every member builds its own response
// from its share of the answer. Every wait is on another living request's promise, raced with a
// keep-alive timer of the waiter's own, as in ours. No validation, no keys, no audit trail: what
// group commit itself costs on this runtime, beside the floor's one call per request.
// The object repeats ../floor's, without its sockets and streams: each peer is its own module
// root under the launcher, which cannot import across peers.
import { DurableObject } from 'cloudflare:workers';

const JSON_HEADERS = { 'content-type': 'application/json' };
const K = 2;
const MAX_GROUP = 64;
const KEEP_ALIVE_MS = 30_000;

export class Counter extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec('CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY, version INTEGER NOT NULL)');
    this.sql.exec('INSERT OR IGNORE INTO counter (id, version) VALUES (1, 0)');
    this.version = this.sql.exec('SELECT version FROM counter WHERE id = 1').one().version;
  }

  body() {
    return `{"value":${this.version},"version":${this.version}}`;
  }

  increment() {
    const version = ++this.version;
    this.sql.exec('UPDATE counter SET version = ? WHERE id = 1', version);
    return this.body();
  }

  /** A request alone: GET reads, POST increments. */
  fetch(request) {
    return new Response(request.method === 'POST' ? this.increment() : this.body(), { headers: JSON_HEADERS });
  }

  /** A group: `items` is a string of `r` (read) and `i` (increment), one per request. */
  batch(items) {
    const out = [];
    for (const item of items) out.push(item === 'i' ? this.increment() : this.body());
    return out;
  }
}

const inFlight = new Set(); // promises of the calls in flight, each made by its sender
const open = []; // groups waiting for a call: { items, outcome, resolve, answer }

/** Waits for the first of `promises` (other requests') or this request's own keep-alive timer. */
async function wait(promises) {
  let timer;
  const alarm = new Promise((resolve) => {
    timer = setTimeout(resolve, KEEP_ALIVE_MS);
  });
  await Promise.race([...promises, alarm]).catch(() => {});
  clearTimeout(timer);
}

function send(call) {
  inFlight.add(call);
  const done = () => inFlight.delete(call);
  call.then(done, done);
  return call;
}

async function lead(stub, group, ahead) {
  if (ahead) await wait([ahead]);
  while (inFlight.size >= K) await wait([...inFlight]);
  open.shift(); // the front group is this one: groups leave in arrival order
  try {
    group.answer = await send(stub.batch(group.items));
  } finally {
    group.resolve();
  }
  return new Response(group.answer[0], { headers: JSON_HEADERS });
}

async function member(group, index) {
  await wait([group.outcome]);
  return new Response(group.answer[index], { headers: JSON_HEADERS });
}

export default {
  fetch(request, env) {
    const stub = env.COUNTER.get(env.COUNTER.idFromName('global'));
    const item = request.method === 'POST' ? 'i' : 'r';
    if (open.length === 0 && inFlight.size < K) return send(stub.fetch(request));
    const back = open.at(-1);
    if (back && back.items.length < MAX_GROUP) {
      back.items += item;
      return member(back, back.items.length - 1);
    }
    let resolve;
    const outcome = new Promise((r) => {
      resolve = r;
    });
    const group = { items: item, outcome, resolve, answer: null };
    open.push(group);
    return lead(stub, group, back?.outcome);
  },
};
