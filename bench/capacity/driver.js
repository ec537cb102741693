// The object's own capacity (bench/capacity.mjs): a Worker that calls our counter object
// directly with ready-made calls, so the edge (routing, validation, keys, logging, splitting
// answers) costs nothing and the figure is what the one object can apply. Each call carries
// `size` changes (`kind=changes`) or reads (`kind=reads`): size 1 is the single call every
// request makes alone (`/mutate?…`, `/value`), larger sizes are batch calls (a JSON array of
// `{"mutate":…}` or `"value"`, src/core/batch.rs), every change with its own fresh key, sent as
// the edge sends them: the object's method `batch` (`via=rpc`, the default); a call alone may
// also be a request whose body the caller reads (`via=fetch`, size 1 only: batches are only
// method calls), or a request whose body it never reads (`via=pass`: how the edge passes a
// lone request's response through to its client). `lanes` calls are kept in flight. Only the benchmark runs this Worker;
// it is never deployed.
//
//   GET /?size=16&seconds=5&lanes=4&run=<id>[&kind=reads][&via=fetch|pass]
//     →  {"size","kind","via","calls","changes","errors","ms","version_before","version_after"}
const ORIGIN = 'https://counter';

export default {
  async fetch(request, env) {
    const q = new URL(request.url).searchParams;
    const size = Number(q.get('size') ?? 1);
    const seconds = Number(q.get('seconds') ?? 5);
    const lanes = Number(q.get('lanes') ?? 4);
    const run = q.get('run') ?? 'cap';
    const kind = q.get('kind') ?? 'changes';
    const via = q.get('via') ?? 'rpc';
    if (!(size >= 1 && size <= 64 && seconds > 0 && lanes >= 1) || !['changes', 'reads'].includes(kind) || !['rpc', 'fetch', 'pass'].includes(via) || (via !== 'rpc' && size !== 1)) {
      return new Response('bad parameters', { status: 400 });
    }
    const stub = env.COUNTER.get(env.COUNTER.idFromName('global'));
    const version = async () => (await (await stub.fetch(`${ORIGIN}/value`)).json()).version;
    let next = 0;
    const call = () => {
      if (size === 1 && via !== 'rpc') return kind === 'reads' ? `${ORIGIN}/value` : `${ORIGIN}/mutate?op=increment&n=1&key=${run}.${next++}&client=unknown`;
      const items = [];
      for (let i = 0; i < size; i++) {
        items.push(kind === 'reads' ? 'value' : { mutate: { mutation: { op: 'increment', operand: 1, key: `${run}.${next++}` }, client: 'unknown' } });
      }
      return JSON.stringify(items);
    };
    // One call: true when it was answered in full.
    const send = async () => {
      if (via === 'rpc') {
        const text = await stub.batch(call());
        return typeof text === 'string' && text.length > 0;
      }
      const r = await stub.fetch(call());
      if (via === 'fetch') await r.arrayBuffer();
      return r.status === 200;
    };
    const before = await version();
    let calls = 0;
    let errors = 0;
    const t0 = performance.now();
    const deadline = Date.now() + seconds * 1000; // the clock advances across each awaited call
    const lane = async () => {
      while (Date.now() < deadline) {
        if (await send()) calls++;
        else errors++;
      }
    };
    await Promise.all(Array.from({ length: lanes }, lane));
    const ms = performance.now() - t0;
    const after = await version();
    return Response.json({ size, kind, via, lanes, calls, changes: after - before, errors, ms, version_before: before, version_after: after });
  },
};
