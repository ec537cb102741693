// A no-op Worker: the runtime's ceiling. No routing, no Durable Object, no storage: every request
// gets the same constant JSON body at once, so its throughput is the most any Worker can reach
// through this runtime on this machine. The benchmarks report our figures as ratios to it.
export default {
  async fetch() {
    return new Response('{"value":0}', { headers: { 'content-type': 'application/json' } });
  },
};
