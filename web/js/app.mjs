/**
 * The page: connects the click sender, the live stream and the reconciler to the document.
 *
 * All decisions live in the modules it wires (each testable without a browser); this file
 * only turns their state into DOM and DOM events into their calls. The value on screen is
 * always the server's: a click shows up as "pending" until its answer or its broadcast
 * arrives, never as a guess, so the number never has to jump back.
 */
import { createSender, parseSavedQueue } from './sender.mjs';
import { createLive } from './live.mjs';
import { createModel } from './reconcile.mjs';
import { describeChange, formatNumber, parseAmount, timeAgo } from './format.mjs';
import { chartGeometry } from './chart.mjs';
import { checkLedger, describeLedger } from './ledger.mjs';

/** Changes remembered, and so drawn in the chart. */
const KEEP = 40;
/** Changes listed under "Recent activity". */
const LISTED = 20;
const TITLE = document.title;
/** Where this tab keeps its unanswered clicks, so that a reload sends them instead of losing them. */
const SAVED = 'acidizer.queue';

const $ = (id) => document.getElementById(id);
const ui = {
  value: $('value'),
  meta: $('meta'),
  amount: $('amount'),
  amountError: $('amount-error'),
  amountHelp: $('amount-help'),
  inc: $('inc'),
  dec: $('dec'),
  presets: document.querySelectorAll('[data-amount]'),
  pending: $('pending'),
  notice: $('notice'),
  link: $('link'),
  linkText: $('link-text'),
  linkWait: $('link-wait'),
  chart: $('chart'),
  chartLabel: $('chart-label'),
  chartArea: $('chart-area'),
  chartLine: $('chart-line'),
  chartEnd: $('chart-end'),
  chartEmpty: $('chart-empty'),
  legend: $('legend'),
  changes: $('changes'),
  changesEmpty: $('changes-empty'),
  ledger: $('ledger'),
};

const model = createModel(KEEP);
/** The history is complete up to this version (every change up to it is in the model). */
let covered = -1;
/** The running history load, if any. */
let loading = null;
/** The value on screen, to tell which way it moved. */
let shown = null;
/** The newest version listed so far; later entries are marked new (and slide in). */
let listedUpTo = null;
let link = { state: 'connecting', retryAt: null };
/** Whether the stream has been live before: later connection attempts are reconnects. */
let wasLive = false;
let sending = { pending: 0, breaker: 'closed', resumeAt: null, failures: 0, lastFailure: null };

const sender = createSender({
  fetch,
  setTimeout,
  clearTimeout,
  now: Date.now,
  random: Math.random,
  newKey,
  restore: parseSavedQueue(storage((s) => s.getItem(SAVED))),
  onQueue: (jobs) =>
    storage((s) => (jobs.length > 0 ? s.setItem(SAVED, JSON.stringify(jobs)) : s.removeItem(SAVED))),
  onChange: (state) => {
    const before = sending.breaker;
    sending = state;
    if (state.breaker === 'open' && before === 'closed') say(pausedMessage(state.lastFailure), 'warn');
    if (state.breaker === 'closed' && before !== 'closed') say('Back in touch: sending again.', 'ok');
    renderSending();
  },
});

for (const outcome of sender.restored) outcome.then(show);

const live = createLive({
  url: `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/api/ws`,
  WebSocket,
  setTimeout,
  clearTimeout,
  now: Date.now,
  random: Math.random,
  onMessage: receive,
  onStatus: (status) => {
    link = status;
    wasLive ||= status.state === 'live';
    renderLink();
  },
});

/** Runs `use` on this tab's session storage. Storage that is off or full gives null: the queue
 * then lives in memory only. */
function storage(use) {
  try {
    return use(sessionStorage);
  } catch {
    return null;
  }
}

/** A fresh idempotency key. randomUUID needs a secure context; a plain-http address (a phone
 * trying the dev server over the LAN) still has getRandomValues, so build the v4 UUID here. */
function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// ---- Data in ----

/** A message from the live stream (already in version order, once each). */
async function receive(message) {
  if (message.type === 'update') {
    if (message.version === covered + 1) covered = message.version;
    model.record(message);
  } else {
    model.observe({ value: message.value, version: message.version, at: null });
    // A snapshot skips whatever came before it; fetch the history unless it is already here.
    await loading;
    if (message.version > covered) loadHistory();
  }
  render();
}

/** Reads the current value and the changes that led to it (the last KEEP of them). */
function loadHistory() {
  loading ??= (async () => {
    try {
      const now = await getJson('/api/value');
      model.observe({ value: now.value, version: now.version, at: now.updated_at });
      const page = await getJson(`/api/audit?after=${Math.max(0, now.version - KEEP)}&limit=${KEEP}`);
      for (const change of page.entries) model.record(change);
      covered = Math.max(covered, now.version);
    } catch {
      // The stream keeps the number live regardless; the next snapshot tries again.
    } finally {
      loading = null;
    }
    render();
  })();
  return loading;
}

async function getJson(path) {
  const res = await fetch(path, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
  return res.json();
}

// ---- Clicks ----

async function change(operation) {
  const amount = checkAmount();
  if (amount === null) {
    ui.amount.focus();
    return;
  }
  if (sending.breaker === 'closed') say('');
  show(await sender.submit(operation, amount));
}

/** Shows a click's answer: an applied change joins the model, a refusal is said in words. */
function show(outcome) {
  if (outcome.ok) {
    model.record(outcome.body);
    render();
  } else {
    say(`Not applied: ${outcome.problem.detail}`, 'error');
  }
}

/** Validates the amount field, shows why it is wrong if it is; the amount or null. */
function checkAmount() {
  const result = parseAmount(ui.amount.value);
  ui.amount.setAttribute('aria-invalid', String(!result.ok));
  // The error takes the hint's place, right where the eye already is.
  ui.amountError.hidden = result.ok;
  ui.amountHelp.hidden = !result.ok;
  ui.amountError.textContent = result.ok ? '' : result.message;
  for (const b of ui.presets) {
    b.setAttribute('aria-pressed', String(result.ok && Number(b.dataset.amount) === result.amount));
  }
  return result.ok ? result.amount : null;
}

ui.inc.addEventListener('click', () => change('increment'));
ui.dec.addEventListener('click', () => change('decrement'));
ui.amount.addEventListener('input', checkAmount);
for (const b of ui.presets) {
  b.addEventListener('click', () => {
    ui.amount.value = b.dataset.amount;
    checkAmount();
  });
}

// + and ArrowUp increment, - and ArrowDown decrement, anywhere but in a text field (where
// they type or move the caret). A held key's repeats are ignored: one press, one click.
document.addEventListener('keydown', (event) => {
  if (event.defaultPrevented || event.repeat || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.target.closest?.('input, textarea, select, [contenteditable]')) return;
  const button = { '+': ui.inc, ArrowUp: ui.inc, '-': ui.dec, ArrowDown: ui.dec }[event.key];
  if (!button) return;
  event.preventDefault();
  button.classList.add('pressed');
  setTimeout(() => button.classList.remove('pressed'), 120);
  button.click();
});

addEventListener('online', () => {
  live.setOnline(true);
  sender.nudge();
});
addEventListener('offline', () => live.setOnline(false));

// Queued clicks survive a reload (session storage), but closing the tab drops them, and the
// browser cannot tell the two apart: it asks first either way.
addEventListener('beforeunload', (event) => {
  if (sending.pending > 0) event.preventDefault();
});

// ---- Rendering ----

function render() {
  renderValue();
  renderMeta();
  renderChanges();
  renderChart();
}

function renderValue() {
  const current = model.current;
  if (current === null || current.value === shown) return;
  const text = formatNumber(current.value);
  ui.value.textContent = text;
  ui.value.setAttribute('aria-busy', 'false');
  ui.value.style.setProperty('--chars', String(Math.max(text.length, 3)));
  document.title = `${text} · ${TITLE}`;
  if (shown !== null) {
    // Restart the animation: drop the class, force a style flush, add it back.
    ui.value.classList.remove('up', 'down');
    void ui.value.offsetWidth;
    ui.value.classList.add(current.value > shown ? 'up' : 'down');
  }
  shown = current.value;
}

function renderMeta() {
  const current = model.current;
  if (current === null) return;
  const at = current.at ?? model.changes.find((c) => c.version === current.version)?.at;
  const when = current.version === 0 ? 'No changes yet · ' : at ? `Changed ${timeAgo(at, Date.now())} · ` : '';
  setText(ui.meta, `${when}version ${formatNumber(current.version)}`);
}

function renderChanges() {
  const recent = model.changes.slice(-LISTED).reverse();
  ui.changesEmpty.hidden = model.current?.version !== 0;
  const items = recent.map((c) => {
    const { badge, text, direction } = describeChange(c);
    const li = document.createElement('li');
    if (listedUpTo !== null && c.version > listedUpTo) li.className = 'new';
    const mark = node('span', 'badge', badge);
    mark.dataset.direction = direction;
    mark.setAttribute('aria-hidden', 'true');
    const what = node('span', 'what', text);
    what.append(node('span', '', `${formatNumber(c.previous_value)} → ${formatNumber(c.value)}`));
    const time = node('time', '', timeAgo(c.at, Date.now()));
    time.dateTime = c.at;
    time.title = new Date(c.at).toLocaleString();
    li.append(mark, what, time);
    return li;
  });
  ui.changes.replaceChildren(...items);
  if (recent.length > 0) listedUpTo = Math.max(listedUpTo ?? 0, recent[0].version);
}

function renderChart() {
  const g = chartGeometry(model.changes, { width: 600, height: 180, pad: 12 });
  ui.chart.hidden = g === null;
  ui.chartEmpty.hidden = model.current?.version !== 0;
  if (g === null) return;
  ui.chartArea.setAttribute('d', g.area);
  ui.chartLine.setAttribute('d', g.line);
  ui.chartEnd.setAttribute('cx', g.end.x);
  ui.chartEnd.setAttribute('cy', g.end.y);
  const n = model.changes.length;
  const latest = model.changes[n - 1].value;
  setText(ui.legend, `Low ${formatNumber(g.low)} · High ${formatNumber(g.high)}`);
  setText(ui.chartLabel, `Value over the last ${n} ${n === 1 ? 'change' : 'changes'}: lowest ${formatNumber(g.low)}, highest ${formatNumber(g.high)}, now ${formatNumber(latest)}.`);
}

const LINK_TEXT = { connecting: 'Connecting', live: 'Live', reconnecting: 'Reconnecting', offline: 'Offline' };

function renderLink() {
  const { state, retryAt } = link;
  ui.link.dataset.state = state;
  // One word per situation, so the status is announced when it changes, not on every attempt.
  setText(ui.linkText, state === 'connecting' && wasLive ? 'Reconnecting' : LINK_TEXT[state]);
  setText(ui.linkWait, state === 'reconnecting' ? ` in ${secondsUntil(retryAt)}s` : state === 'connecting' ? '…' : '');
}

function renderSending() {
  const { pending, breaker, resumeAt } = sending;
  ui.pending.hidden = pending === 0;
  if (pending === 0) return;
  const clicks = pending === 1 ? '1 click' : `${pending} clicks`;
  const text =
    breaker === 'open' ? `${clicks} waiting · sending paused, next try in ${secondsUntil(resumeAt)}s`
    : resumeAt !== null ? `${clicks} waiting · retrying in ${secondsUntil(resumeAt)}s`
    : sending.failures > 0 ? `${clicks} waiting · trying again`
    : `Sending ${clicks}…`;
  setText(ui.pending, text);
}

/** Why sending paused, in words: the server's own detail when it gave one. */
function pausedMessage(failure) {
  const why =
    !navigator.onLine ? 'You’re offline.'
    : failure?.status === 429 ? 'The server asked for a pause.'
    : failure?.status === 0 ? 'The server can’t be reached.'
    : `The server is having trouble${failure?.detail ? `: ${failure.detail}` : '.'}`;
  return `${why} Sending is paused for a moment; your clicks are kept and will be sent in order.`;
}

/** Puts a message in the polite live region; an empty text clears it. */
function say(text, tone = '') {
  ui.notice.textContent = text;
  ui.notice.dataset.tone = tone;
}

const secondsUntil = (t) => Math.max(0, Math.ceil((t - Date.now()) / 1000));

/** Writes only when the text differs, so a ticking render does not disturb screen readers. */
function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

function node(tag, className, text) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  element.textContent = text;
  return element;
}

/** Countdowns and "12s ago" age by themselves. */
function tick() {
  renderLink();
  renderSending();
  renderMeta();
  for (const time of ui.changes.querySelectorAll('time')) setText(time, timeAgo(time.dateTime, Date.now()));
}

checkAmount();
live.start(navigator.onLine);
loadHistory();
setInterval(tick, 500);

/** How often the page checks that the history it saw was only appended to. */
const LEDGER_EVERY_MS = 60_000;

/** localStorage, or a stand-in that forgets when storage is off. */
function localStore() {
  try {
    return window.localStorage;
  } catch {
    return { getItem: () => null, setItem: () => {} };
  }
}

/** Checks the ledger (web/js/ledger.mjs) and shows the result; silent when it cannot tell. */
async function checkHistory() {
  if (!globalThis.crypto?.subtle) return;
  const result = await checkLedger({ fetch: (url, init) => fetch(url, init), storage: localStore(), subtle: crypto.subtle });
  const { text, warn } = describeLedger(result);
  if (!text) return;
  ui.ledger.textContent = text;
  ui.ledger.dataset.tone = warn ? 'error' : 'ok';
}

checkHistory();
setInterval(checkHistory, LEDGER_EVERY_MS);
