// The edge script's entry (wrangler.toml `main`, copied to build/edge/entry.js by
// scripts/build.sh): the Worker's `fetch` as the platform calls it.
//
// worker-build's module (index.js) exports the handler as a `WorkerEntrypoint` class behind a
// Proxy, so the runtime constructs an instance and two proxies for every request before the
// Rust handler runs; that costs more than the handler's own validation (BENCHMARKS.md, "Our
// Worker's entry"). This entry is a plain module worker that calls the same Rust handler
// (`fetch` in src/lib.rs) directly. It decides nothing about a request.
//
// It keeps what the class path is for: after a Wasm trap (a panic, which would be a bug) the
// module's instance is reset before the next request. index.js marks the trap in
// `globalThis.__worker_init_state` (its own `error` listener, or the catch below); a request
// that finds the mark goes through the class once, whose constructor resets the instance.
//
// And a request the Rust handler fails (it throws, a trap among others, or its promise
// rejects: a request the old instance held when it trapped, say) still gets a problem+json
// 500 with the same type and title as the Rust `Problem::Internal`, written here since the
// instance may be gone, instead of the runtime's own error page. `POST /api/admin/edge/panic`,
// a test hook, traps on purpose (tests/crash.rs).
import Worker from './index.js';

const rustFetch = Worker.prototype.fetch;
const state = globalThis.__worker_init_state;

const FAILED = JSON.stringify({
  type: '/problems/internal',
  title: 'Internal error',
  status: 500,
  detail: 'Something failed on our side; retry with the same idempotency key, which applies a change at most once.',
});

function failed(e) {
  if (e instanceof WebAssembly.RuntimeError) state.criticalError = true;
  console.error('the edge failed a request', e);
  return new Response(FAILED, {
    status: 500,
    headers: { 'content-type': 'application/problem+json', 'cache-control': 'no-store' },
  });
}

export default {
  fetch(request, env, ctx) {
    let result;
    try {
      result = state.criticalError
        ? new Worker(ctx, env).fetch(request)
        : rustFetch.call({ env, ctx }, request);
    } catch (e) {
      return failed(e);
    }
    return result instanceof Promise ? result.then(undefined, failed) : result;
  },
};
