// <acid-counter>: the live Number Acidizer value on any page.
//
//   <script type="module" src="https://COUNTER/embed.js"></script>
//   <acid-counter></acid-counter>            read-only, live
//   <acid-counter buttons></acid-counter>    with − and +, where ALLOWED_ORIGINS admits the page
//
// `src` is the service's origin (default: where this script came from). The value arrives on
// the WebSocket; where the socket is refused (the page's origin is not in ALLOWED_ORIGINS)
// the element falls back to Server-Sent Events, which anyone may read, and keeps its buttons
// but says that changes are not allowed here. Both streams resume from the last version with
// no gap and no duplicate. Theme it with --acid-bg, --acid-fg, --acid-muted, --acid-accent,
// --acid-radius and --acid-font, or ::part(value), ::part(button), ::part(status).
const HOME = new URL(import.meta.url).origin;
const CSS = `:host{display:inline-flex;flex-wrap:wrap;align-items:center;gap:.5em;padding:.5em .8em;border-radius:var(--acid-radius,12px);background:var(--acid-bg,#15181a);color:var(--acid-fg,#eef0ea);font:var(--acid-font,600 1rem/1.2 system-ui,sans-serif)}
[hidden]{display:none}
.l{color:var(--acid-muted,#a0a69f);font-weight:500}
output{font-size:1.6em;font-variant-numeric:tabular-nums}
button{font:inherit;min-width:2em;border:0;border-radius:8px;padding:.2em .5em;background:var(--acid-accent,#c6f432);color:#11140a;cursor:pointer}
button:focus-visible{outline:2px solid var(--acid-fg,#eef0ea);outline-offset:2px}
[role=status]{flex-basis:100%;font-size:.75em;font-weight:400;color:var(--acid-muted,#a0a69f)}
[role=status]:empty{display:none}
@media (prefers-reduced-motion:no-preference){output.b{animation:b .4s}@keyframes b{50%{color:var(--acid-accent,#c6f432)}}}`;
let sheet;
class AcidCounter extends HTMLElement {
  connectedCallback() {
    if (!this.shadowRoot) this.#build();
    this.base = new URL(this.getAttribute('src') || HOME, location.href).origin;
    this.last = null;
    this.tries = 0;
    this.sse = false;
    this.#connect();
  }

  disconnectedCallback() {
    this.#close();
    clearTimeout(this.timer);
  }

  #build() {
    const root = this.attachShadow({ mode: 'open' });
    if (root.adoptedStyleSheets) {
      sheet ??= new CSSStyleSheet();
      if (!sheet.cssRules.length) sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    }
    const label = document.createElement('span');
    label.className = 'l';
    label.append(Object.assign(document.createElement('slot'), { textContent: 'Number Acidizer' }));
    this.out = Object.assign(document.createElement('output'), { textContent: '\u2014' });
    this.out.setAttribute('part', 'value');
    this.out.setAttribute('aria-live', 'polite');
    this.out.setAttribute('aria-atomic', 'true');
    this.out.setAttribute('aria-busy', 'true');
    this.status = document.createElement('span');
    this.status.setAttribute('role', 'status');
    this.status.setAttribute('part', 'status');
    root.append(label, this.out);
    if (this.hasAttribute('buttons')) {
      for (const [sym, op, name] of [['\u2212', 'decrement', 'Decrement'], ['+', 'increment', 'Increment']]) {
        const b = Object.assign(document.createElement('button'), { type: 'button', textContent: sym });
        b.setAttribute('part', 'button');
        b.setAttribute('aria-label', name);
        b.addEventListener('click', () => this.#change(op));
        root.append(b);
      }
    }
    root.append(this.status);
  }

  // The stream: the socket first; if it is refused before it opens, events from then on.
  #connect() {
    this.#close();
    const q = this.last === null ? '' : `?since=${this.last}`;
    if (this.sse) {
      const es = (this.es = new EventSource(`${this.base}/api/events${q}`));
      const on = (e) => this.#take(e.data);
      es.addEventListener('snapshot', on);
      es.addEventListener('update', on);
      // The stream opens where the socket did not: the socket was refused, not unreachable.
      es.onopen = () => { this.refused = true; this.#live(); };
      // The browser resumes by itself (Last-Event-ID); only a refusal closes the source.
      es.onerror = () => es.readyState === 2 ? this.#retry() : this.#say('Reconnecting\u2026');
      return;
    }
    const ws = (this.ws = new WebSocket(`${this.base.replace(/^http/, 'ws')}/api/ws${q}`));
    let opened = false;
    ws.onopen = () => { opened = true; this.#live(); };
    ws.onmessage = (e) => this.#take(e.data);
    ws.onclose = () => {
      if (this.ws !== ws) return;
      if (!opened) this.sse = true;
      this.#retry(opened ? undefined : 0);
    };
  }

  #close() {
    if (this.ws) { this.ws.onclose = null; this.ws.close(); }
    this.es?.close();
    this.ws = this.es = null;
  }

  #live() {
    this.tries = 0;
    if (!this.note) this.#say('');
  }

  #retry(ms = Math.random() * Math.min(30000, 1000 * 2 ** this.tries++)) {
    this.#close();
    this.#say('Reconnecting\u2026');
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.#connect(), ms);
  }

  // Snapshots and updates, each version once and in order; a hole means something was lost.
  #take(data) {
    let m;
    try { m = JSON.parse(data); } catch { return; }
    if (m.type === 'update' && this.last !== null) {
      if (m.version <= this.last) return;
      if (m.version !== this.last + 1) return this.#retry(0);
    } else if (m.type !== 'snapshot') return;
    this.last = m.version;
    this.out.textContent = new Intl.NumberFormat().format(m.value).replace('-', '\u2212');
    this.out.setAttribute('aria-busy', 'false');
    this.out.classList.remove('b');
    void this.out.offsetWidth;
    this.out.classList.add('b');
  }

  #say(text) {
    this.status.textContent = text;
  }

  // One change with its own key, sent again with the same key until it is answered.
  async #change(op) {
    const key = crypto.randomUUID();
    for (let i = 0; i < 4; i++) {
      let r;
      try {
        r = await fetch(`${this.base}/api/${op}`, { method: 'POST', headers: { 'Idempotency-Key': key } });
      } catch {
        // From a page the service does not admit, the browser refuses the call itself.
        if (this.refused) return this.#refuse();
      }
      if (r?.ok) return this.#note('');
      if (r?.status === 403) return this.#refuse();
      if (r && r.status < 429 && r.status !== 408) {
        const p = await r.json().catch(() => ({}));
        return this.#note(p.detail || `Refused (${r.status}).`);
      }
      await new Promise((ok) => setTimeout(ok, (Number(r?.headers.get('retry-after')) || 2 ** i) * 1000));
    }
    this.#note('Could not reach the counter; try again.');
  }

  #refuse() {
    this.#note(`Changes are not allowed from ${location.origin}: the counter's ALLOWED_ORIGINS does not admit this page.`);
  }

  #note(text) {
    this.note = text;
    this.#say(text);
  }
}

if (!customElements.get('acid-counter')) customElements.define('acid-counter', AcidCounter);
