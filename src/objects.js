// The objects script's entry (objects.toml `main`, copied to build/objects/entry.js by
// scripts/build.sh): the Durable Object classes as the platform sees them.
//
// The classes are Rust (src/counter, src/relay), exported by wasm-bindgen as plain classes. A
// plain class can be called only through `fetch`; the platform's RPC (calling a method on a
// stub) needs a class that extends `DurableObject`. So `Counter` here is that class, and
// every handler is the Rust object's own: this file decides nothing. RPC is how the edge sends
// a batch (`batch(url)` → the replies as one string), because reading a response body costs
// the edge more than the whole call (README, "Batching").
import { DurableObject } from 'cloudflare:workers';
import worker, { Counter as CounterObject, Relay } from './index.js';

export class Counter extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.object = new CounterObject(ctx, env);
  }

  fetch(request) {
    return this.object.fetch(request);
  }

  batch(url) {
    return this.object.batch(url);
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
export default worker;
