// The object's own capacity (bench/capacity.mjs): a Worker that calls our counter object
// directly with ready-made calls, so the edge (routing, validation, keys, logging, splitting
// answers) costs nothing and the figure is what the one object can apply. Each call carries
// `size` changes: size 1 is today's single call (`/mutate?…`), larger sizes are batch calls
// (`/batch?m,…&m,…`, src/core/batch.rs), every change with its own fresh key. `lanes` calls are
// kept in flight. Only the benchmark runs this Worker; it is never deployed.
//
//   GET /?size=16&seconds=5&lanes=4&run=<id>  →  {"size","calls","changes","errors","ms","version_before","version_after"}
const ORIGIN = 'https://counter';

export default {
  async fetch(request, env) {
    const q = new URL(request.url).searchParams;
    const size = Number(q.get('size') ?? 1);
    const seconds = Number(q.get('seconds') ?? 5);
    const lanes = Number(q.get('lanes') ?? 4);
    const run = q.get('run') ?? 'cap';
    if (!(size >= 1 && size <= 64 && seconds > 0 && lanes >= 1)) return new Response('bad parameters', { status: 400 });
    const stub = env.COUNTER.get(env.COUNTER.idFromName('global'));
    const version = async () => (await (await stub.fetch(`${ORIGIN}/value`)).json()).version;
    let next = 0;
    const call = () => {
      if (size === 1) return `${ORIGIN}/mutate?op=increment&n=1&key=${run}.${next++}&client=unknown`;
      const items = [];
      for (let i = 0; i < size; i++) items.push(`m,increment,1,${run}.${next++},unknown`);
      return `${ORIGIN}/batch?${items.join('&')}`;
    };
    const before = await version();
    let calls = 0;
    let errors = 0;
    const t0 = performance.now();
    const deadline = Date.now() + seconds * 1000; // the clock advances across each awaited call
    const lane = async () => {
      while (Date.now() < deadline) {
        const r = await stub.fetch(call());
        await r.arrayBuffer();
        if (r.status === 200) calls++;
        else errors++;
      }
    };
    await Promise.all(Array.from({ length: lanes }, lane));
    const ms = performance.now() - t0;
    const after = await version();
    return Response.json({ size, lanes, calls, changes: after - before, errors, ms, version_before: before, version_after: after });
  },
};
