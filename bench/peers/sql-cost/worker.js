// What a change's SQL statements cost the object by themselves (bench/sql-cost.mjs): a bare
// SQLite-backed object that applies N changes in one request, in groups of G (an outer
// transaction, each change a nested one, as a batch of G does), writing per change:
//   none     nothing (the loop and the transactions alone)
//   ours     the statements our counter runs: the counter row, the audit entry, the key's
//            record (a rowid table with a unique index on the key) and the Merkle row
//   slim-key the same with the key's record as (key PRIMARY KEY, version) WITHOUT ROWID
//   trigger  the audit entry only, with a trigger writing the counter row and the key's record
//            (one statement from the caller instead of three), and the Merkle row
// Every mode writes into a fresh object of its own. Bench only.
import { DurableObject } from 'cloudflare:workers';

const SCHEMA = [
  'CREATE TABLE counter (id INTEGER PRIMARY KEY, value INTEGER NOT NULL, version INTEGER NOT NULL, updated_at TEXT)',
  'INSERT INTO counter VALUES (1, 0, 0, NULL)',
  'CREATE TABLE audit (version INTEGER PRIMARY KEY, operation TEXT NOT NULL, amount INTEGER NOT NULL, previous_value INTEGER NOT NULL, value INTEGER NOT NULL, request_id TEXT NOT NULL, at TEXT NOT NULL)',
  'CREATE TABLE keys (version INTEGER PRIMARY KEY, request_id TEXT NOT NULL UNIQUE, operation TEXT NOT NULL, amount INTEGER NOT NULL, previous_value INTEGER NOT NULL, value INTEGER NOT NULL, at TEXT NOT NULL)',
  'CREATE TABLE slim_keys (request_id TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID',
  'CREATE TABLE merkle (version INTEGER PRIMARY KEY, hashes BLOB NOT NULL)',
  'CREATE TABLE audit_t (version INTEGER PRIMARY KEY, operation TEXT NOT NULL, amount INTEGER NOT NULL, previous_value INTEGER NOT NULL, value INTEGER NOT NULL, request_id TEXT NOT NULL, at TEXT NOT NULL)',
  `CREATE TRIGGER audit_t_written AFTER INSERT ON audit_t BEGIN
     UPDATE counter SET value = NEW.value, version = NEW.version, updated_at = NEW.at WHERE id = 1;
     INSERT INTO keys VALUES (NEW.version, NEW.request_id, NEW.operation, NEW.amount, NEW.previous_value, NEW.value, NEW.at);
   END`,
];

const dec = new TextDecoder();
const Q = [
  'UPDATE counter SET value = ?, version = ?, updated_at = ? WHERE id = 1',
  'INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?)',
  'INSERT INTO keys VALUES (?, ?, ?, ?, ?, ?, ?)',
  'INSERT INTO merkle VALUES (?, ?)',
].map((q) => new TextEncoder().encode(q));

export class Counter extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    for (const s of SCHEMA) ctx.storage.sql.exec(s);
  }

  run(mode, n, group) {
    const sql = this.ctx.storage.sql;
    const storage = this.ctx.storage;
    const hashes = new Uint8Array(64).buffer;
    const at = new Date().toISOString();
    const t0 = performance.now();
    let v = 0;
    while (v < n) {
      storage.transactionSync(() => {
        for (let j = 0; j < group && v < n; j++) {
          v++;
          const key = `run.${v}`;
          storage.transactionSync(() => {
            if (mode === 'ours-decoded') {
              // As from Wasm: every query text decoded from bytes at each call.
              sql.exec(dec.decode(Q[0]), v, v, at);
              sql.exec(dec.decode(Q[1]), v, 'increment', 1, v - 1, v, key, at);
              sql.exec(dec.decode(Q[2]), v, key, 'increment', 1, v - 1, v, at);
              sql.exec(dec.decode(Q[3]), v, hashes);
            } else if (mode === 'ours') {
              sql.exec('UPDATE counter SET value = ?, version = ?, updated_at = ? WHERE id = 1', v, v, at);
              sql.exec('INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?)', v, 'increment', 1, v - 1, v, key, at);
              sql.exec('INSERT INTO keys VALUES (?, ?, ?, ?, ?, ?, ?)', v, key, 'increment', 1, v - 1, v, at);
              sql.exec('INSERT INTO merkle VALUES (?, ?)', v, hashes);
            } else if (mode === 'slim-key') {
              sql.exec('UPDATE counter SET value = ?, version = ?, updated_at = ? WHERE id = 1', v, v, at);
              sql.exec('INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?)', v, 'increment', 1, v - 1, v, key, at);
              sql.exec('INSERT INTO slim_keys VALUES (?, ?)', key, v);
              sql.exec('INSERT INTO merkle VALUES (?, ?)', v, hashes);
            } else if (mode === 'trigger') {
              sql.exec('INSERT INTO audit_t VALUES (?, ?, ?, ?, ?, ?, ?)', v, 'increment', 1, v - 1, v, key, at);
              sql.exec('INSERT INTO merkle VALUES (?, ?)', v, hashes);
            }
          });
        }
      });
    }
    return { ms: performance.now() - t0 };
  }
}

export default {
  async fetch(request, env) {
    const u = new URL(request.url);
    const mode = u.searchParams.get('mode');
    const n = Number(u.searchParams.get('n'));
    const group = Number(u.searchParams.get('group'));
    if (!['none', 'ours', 'ours-decoded', 'slim-key', 'trigger'].includes(mode) || !(n > 0) || !(group > 0)) return new Response('bad', { status: 400 });
    const stub = env.COUNTER.get(env.COUNTER.idFromName(`${mode}.${Math.random()}`));
    return Response.json(await stub.run(mode, n, group));
  },
};
