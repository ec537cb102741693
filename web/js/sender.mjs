/**
 * Delivers every click to the server exactly once, in the order it was made.
 *
 * Each click becomes a job with its own Idempotency-Key, made once and sent with every attempt:
 * the server applies a key at most once, so retrying until an answer arrives turns "at most
 * once" into "exactly once". Jobs go out one at a time, oldest first. That keeps people's
 * clicks in order, and while the network is failing, sending more would only fail more.
 *
 * An attempt that got no usable answer (the request failed, 5xx, 429) is retried after an
 * exponential backoff with full jitter, and never before the server's Retry-After. Any other
 * answer is final for that click: a 2xx is its result, a 4xx is a refusal to show.
 *
 * The circuit breaker: after `threshold` consecutive failures it opens and nothing is sent for
 * `coolDown` ms. Then it is half-open: the job at the head of the queue is sent as the probe
 * (safe, since it keeps its key). An answer closes the breaker and the queue drains in order;
 * another failure opens it again. Clicks made meanwhile wait in the queue with their keys.
 *
 * Surviving a reload: `onQueue` hears the unanswered jobs ({key, operation, amount}) whenever
 * the queue changes, for the page to save; `restore` hands saved jobs back (check them with
 * `parseSavedQueue` first). They go out first, in order, with their original keys, so a job
 * the server already applied is only replayed. `sender.restored` holds their outcomes, one
 * promise each, in order. This module touches no storage itself.
 */
import { backoffDelay, retryAfterMs } from './backoff.mjs';

/**
 * @typedef {'increment' | 'decrement'} Operation
 * @typedef {{status: number, title: string, detail: string}} Problem
 * @typedef {{key: string, operation: Operation, amount: number}} Job
 * @typedef {{ok: true, key: string, body: any, replayed: boolean} | {ok: false, key: string, problem: Problem}} Outcome
 * @typedef {{pending: number, breaker: 'closed' | 'open' | 'half-open', resumeAt: number | null,
 *   failures: number, lastFailure: {status: number, detail: string | null} | null}} SenderState
 *   `pending` counts the clicks not answered yet (queued or in flight); `resumeAt` is when the
 *   next attempt is due while waiting; `status` 0 means the request itself failed.
 */

/** At most this many saved jobs are restored. */
export const MAX_RESTORED = 1000;
const KEY = /^[A-Za-z0-9._:-]{1,255}$/;

/**
 * Reads saved jobs from untrusted text: keeps only well-formed ones, in order, at most
 * MAX_RESTORED of them. Never throws; anything unreadable is an empty queue.
 * @param {unknown} text
 * @returns {Job[]}
 */
export function parseSavedQueue(text) {
  let data;
  try {
    data = JSON.parse(String(text));
  } catch {
    return [];
  }
  const jobs = [];
  for (const j of Array.isArray(data) ? data : []) {
    if (jobs.length === MAX_RESTORED) break;
    const { key, operation, amount } = j ?? {};
    if (typeof key === 'string' && KEY.test(key) && (operation === 'increment' || operation === 'decrement')
      && Number.isSafeInteger(amount) && amount >= 1) jobs.push({ key, operation, amount });
  }
  return jobs;
}

/**
 * @param {object} deps
 * @param {typeof fetch} deps.fetch
 * @param {(fn: () => void, ms: number) => any} deps.setTimeout
 * @param {(id: any) => void} deps.clearTimeout
 * @param {() => number} deps.now epoch milliseconds
 * @param {() => number} deps.random uniform in [0, 1)
 * @param {() => string} deps.newKey a fresh idempotency key
 * @param {(ms: number) => AbortSignal} [deps.deadline] aborts an attempt that hangs
 * @param {(state: SenderState) => void} [deps.onChange]
 * @param {Job[]} [deps.restore] saved jobs, sent before any new click
 * @param {(jobs: Job[]) => void} [deps.onQueue] the unanswered jobs, after every change of the queue
 * @param {number} [deps.base] ceiling of the first retry's delay, ms; doubles per attempt
 * @param {number} [deps.cap] the largest ceiling, ms
 * @param {number} [deps.threshold] consecutive failures that open the breaker
 * @param {number} [deps.coolDown] how long the breaker stays open, ms
 * @param {number} [deps.timeout] how long one attempt may take, ms
 */
export function createSender({
  fetch,
  setTimeout,
  clearTimeout,
  now,
  random,
  newKey,
  deadline = (ms) => AbortSignal.timeout(ms),
  onChange = () => {},
  restore = [],
  onQueue = () => {},
  base = 500,
  cap = 16_000,
  threshold = 5,
  coolDown = 10_000,
  timeout = 10_000,
}) {
  /** @type {{key: string, operation: Operation, amount: number, attempts: number, resolve: (o: Outcome) => void}[]} */
  const queue = [];
  let failures = 0;
  /** @type {SenderState['breaker']} */
  let breaker = 'closed';
  let inFlight = false;
  let timer = null;
  let resumeAt = null;
  let lastFailure = null;

  const state = () => ({ pending: queue.length, breaker, resumeAt, failures, lastFailure });
  const notify = () => onChange(state());
  const saveQueue = () => onQueue(queue.map(({ key, operation, amount }) => ({ key, operation, amount })));
  const enqueue = (key, operation, amount) =>
    new Promise((resolve) => queue.push({ key, operation, amount, attempts: 0, resolve }));

  /**
   * Queues one click; resolves once the server has answered it for good.
   * @param {Operation} operation
   * @param {number} amount
   * @returns {Promise<Outcome>}
   */
  function submit(operation, amount) {
    const outcome = enqueue(newKey(), operation, amount);
    saveQueue();
    notify();
    pump();
    return outcome;
  }

  /** Sends the head of the queue unless a request is out or a wait is running. */
  function pump() {
    if (!inFlight && timer === null && queue.length > 0) attempt(queue[0]);
  }

  async function attempt(job) {
    inFlight = true;
    resumeAt = null;
    job.attempts += 1;
    notify();
    const outcome = await post(job);
    inFlight = false;
    if (outcome.retry) {
      retryLater(job, outcome);
      return;
    }
    queue.shift();
    saveQueue();
    failures = 0;
    breaker = 'closed';
    lastFailure = null;
    job.resolve({ ...outcome, key: job.key });
    notify();
    pump();
  }

  /** One attempt; `retry: true` when it may succeed later. */
  async function post(job) {
    let res;
    try {
      res = await fetch(`/api/${job.operation}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'Idempotency-Key': job.key },
        body: JSON.stringify({ amount: job.amount }),
        signal: deadline(timeout),
      });
    } catch {
      return { retry: true, status: 0, detail: null, retryAfter: null };
    }
    // A body cut off mid-way is the same as no answer: the retry's replay brings it back.
    const body = await res.json().catch(() => null);
    if (res.ok && Number.isSafeInteger(body?.version)) {
      return { ok: true, body, replayed: res.headers.get('Idempotent-Replayed') === 'true' };
    }
    const detail = typeof body?.detail === 'string' ? body.detail : null;
    if (res.ok || res.status === 429 || res.status >= 500) {
      const retryAfter = retryAfterMs(res.headers.get('Retry-After'), now());
      return { retry: true, status: res.status, detail, retryAfter };
    }
    const title = typeof body?.title === 'string' ? body.title : `Error ${res.status}`;
    return { ok: false, problem: { status: res.status, title, detail: detail ?? title } };
  }

  function retryLater(job, { status, detail, retryAfter }) {
    failures += 1;
    lastFailure = { status, detail };
    let delay;
    // Only an answer resets the count, so a failed half-open probe lands here too.
    if (failures >= threshold) {
      breaker = 'open';
      delay = coolDown;
    } else {
      delay = backoffDelay(job.attempts - 1, { base, cap }, random);
    }
    wait(Math.max(delay, retryAfter ?? 0));
  }

  function wait(delay) {
    resumeAt = now() + delay;
    timer = setTimeout(resume, delay);
    notify();
  }

  function resume() {
    timer = null;
    if (breaker === 'open') breaker = 'half-open';
    pump();
  }

  /**
   * Cuts a wait short, e.g. when the browser comes back online; an open breaker goes straight
   * to its half-open probe.
   */
  function nudge() {
    if (timer === null) return;
    clearTimeout(timer);
    resume();
  }

  /** @type {Promise<Outcome>[]} */
  const restored = restore.map((j) => enqueue(j.key, j.operation, j.amount));
  pump();
  return { submit, nudge, state, restored };
}
