// The Worker's entry (wrangler.toml `main`, copied to build/entry.js by scripts/build.sh): the
// `fetch` handler and the Durable Object classes as the platform sees them. It decides nothing
// about a request: every handler is the Rust module's own (build/index.js, from worker-build).
//
// The fetch handler. worker-build's module exports it as a `WorkerEntrypoint` class behind a
// Proxy, so the runtime would construct an instance and two proxies for every request before
// the Rust handler runs; that costs more than the handler's own validation (BENCHMARKS.md,
// "Our Worker's entry"). Here it is a plain module worker calling the same Rust handler
// (`fetch` in src/lib.rs) directly. It keeps what the class path is for: after a Wasm trap (a
// panic, which would be a bug) the module's instance is reset before the next request.
// index.js marks the trap in `globalThis.__worker_init_state` (its own `error` listener, or
// the catch below); a request that finds the mark goes through the class once, whose
// constructor resets the instance. A request the Rust handler fails (it throws, a trap among
// others, or its promise rejects) still gets a problem+json 500 with the same type and title
// as the Rust `Problem::Internal`, written here since the instance may be gone.
// `POST /api/admin/edge/panic`, a test hook, traps on purpose (tests/crash.rs).
//
// The classes. wasm-bindgen exports the Rust objects as plain classes, which can be called
// only through `fetch`; the platform's RPC (calling a method on a stub) needs a class that
// extends `DurableObject`. So `Counter` here is that class around the Rust one: RPC is how the
// edge sends a batch (`batch(json)` → the replies as one JSON string, both typed in
// src/core/batch.rs), because reading a response body costs the edge more than the whole call
// (docs/ARCHITECTURE.md, "Batching").
import { DurableObject } from 'cloudflare:workers';
import Worker, { Counter as CounterObject, Relay } from './index.js';

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

export class Counter extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.object = new CounterObject(ctx, env);
  }

  fetch(request) {
    return this.object.fetch(request);
  }

  batch(json) {
    return this.object.batch(json);
  }

  alarm(info) {
    return this.object.alarm(info);
  }

  webSocketMessage(ws, message) {
    return this.object.webSocketMessage(ws, message);
  }

  webSocketClose(ws, code, reason, wasClean) {
    return this.object.webSocketClose(ws, code, reason, wasClean);
  }

  webSocketError(ws, error) {
    return this.object.webSocketError(ws, error);
  }
}

export { Relay };
