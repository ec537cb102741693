// The edge script's entry (wrangler.toml `main`, copied to build/edge/entry.js by
// scripts/build.sh): the Worker's `fetch` as the platform calls it.
//
// worker-build's module (index.js) exports the handler as a `WorkerEntrypoint` class behind a
// Proxy, so the runtime constructs an instance and two proxies for every request before the
// Rust handler runs; that costs more than the handler's own validation (BENCHMARKS.md, "Our
// Worker's entry"). This entry is a plain module worker that calls the same Rust handler
// (`fetch` in src/lib.rs) directly. It decides nothing.
//
// It keeps what the class path is for: after a Wasm trap (a panic, which would be a bug) the
// module's instance is reset before the next request. index.js marks the trap in
// `globalThis.__worker_init_state` (its own `error` listener, or the catch below); a request
// that finds the mark goes through the class once, whose constructor resets the instance.
import Worker from './index.js';

const rustFetch = Worker.prototype.fetch;
const state = globalThis.__worker_init_state;

export default {
  fetch(request, env, ctx) {
    if (state.criticalError) return new Worker(ctx, env).fetch(request);
    try {
      return rustFetch.call({ env, ctx }, request);
    } catch (e) {
      if (e instanceof WebAssembly.RuntimeError) state.criticalError = true;
      throw e;
    }
  },
};
