/**
 * The app's check of the verifiable ledger: it keeps the last checkpoint it saw (in
 * localStorage) and proves that each newer one only appended to that history, with the log's
 * consistency proof (RFC 9162 §2.1.4.2) and SHA-256 from crypto.subtle. A rolled-back or
 * rewritten history is reported loudly, and the saved checkpoint is then kept as evidence.
 *
 * The first checkpoint a browser sees is trusted as it is (there is nothing earlier to compare
 * with); signatures are checked by the offline verifier, not here.
 */

/** Where the last verified checkpoint is kept: `{"size": n, "root": "<base64>"}`. */
export const SAVED_CHECKPOINT = 'acidizer.checkpoint';

const b64 = {
  decode(s) {
    const bin = atob(s);
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  },
};

/** Parses a checkpoint body or signed note: `{origin, size, root}` (root as bytes), or null. */
export function parseCheckpoint(text) {
  const lines = String(text).split('\n');
  if (lines.length < 4 || !/^(0|[1-9][0-9]{0,15})$/.test(lines[1])) return null;
  let root;
  try {
    root = b64.decode(lines[2]);
  } catch {
    return null;
  }
  if (!lines[0] || root.length !== 32) return null;
  return { origin: lines[0], size: Number(lines[1]), root };
}

function equal(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** SHA-256(0x01 ‖ left ‖ right). */
async function node(subtle, left, right) {
  const buf = new Uint8Array(65);
  buf[0] = 1;
  buf.set(left, 1);
  buf.set(right, 33);
  return new Uint8Array(await subtle.digest('SHA-256', buf));
}

/**
 * RFC 9162 §2.1.4.2: whether the tree of `oldSize` leaves with root `oldRoot` is a prefix of
 * the tree of `newSize` leaves with root `newRoot`, given the consistency proof.
 */
export async function verifyConsistency(subtle, oldSize, newSize, oldRoot, newRoot, proof) {
  if (oldSize > newSize) return false;
  if (oldSize === newSize) return proof.length === 0 && equal(oldRoot, newRoot);
  if (oldSize === 0) return proof.length === 0;
  if (proof.length === 0) return false;
  const path = (oldSize & (oldSize - 1)) === 0 ? [oldRoot, ...proof] : [...proof];
  // Sizes up to 2^53 - 1: halve with division, not 32-bit shifts.
  let fn = oldSize - 1;
  let sn = newSize - 1;
  const odd = (n) => n % 2 === 1;
  const half = (n) => Math.floor(n / 2);
  while (odd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      fr = await node(subtle, c, fr);
      sr = await node(subtle, c, sr);
      if (!odd(fn)) {
        while (!odd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      sr = await node(subtle, sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && equal(fr, oldRoot) && equal(sr, newRoot);
}

function load(storage) {
  try {
    const saved = JSON.parse(storage.getItem(SAVED_CHECKPOINT));
    if (saved && Number.isSafeInteger(saved.size) && saved.size >= 0 && typeof saved.root === 'string') {
      const root = b64.decode(saved.root);
      if (root.length === 32) return { size: saved.size, root, text: saved.root };
    }
  } catch {
    // Missing, unreadable or malformed: start over from the next checkpoint.
  }
  return null;
}

function save(storage, size, rootB64) {
  try {
    storage.setItem(SAVED_CHECKPOINT, JSON.stringify({ size, root: rootB64 }));
  } catch {
    // Storage off or full: the check still ran, it just cannot remember.
  }
}

/**
 * Fetches the current checkpoint and checks it against the saved one. Resolves to
 * `{state: 'verified', size}`, `{state: 'rolled-back'|'rewritten', saved, size}` (the loud
 * cases; the saved checkpoint is kept), or `{state: 'unknown'}` when the log cannot be read now.
 */
export async function checkLedger({ fetch, storage, subtle, base = '' }) {
  let text;
  try {
    const r = await fetch(`${base}/api/audit/checkpoint`, { cache: 'no-store' });
    if (!r.ok) return { state: 'unknown' };
    text = await r.text();
  } catch {
    return { state: 'unknown' };
  }
  const cp = parseCheckpoint(text);
  if (!cp) return { state: 'unknown' };
  const rootB64 = String(text).split('\n')[2];
  const saved = load(storage);
  if (saved && saved.size > cp.size) return { state: 'rolled-back', saved: saved.size, size: cp.size };
  if (saved && saved.size > 0) {
    let proof = [];
    if (saved.size < cp.size) {
      try {
        const r = await fetch(`${base}/api/audit/proof/consistency?from=${saved.size}&to=${cp.size}`, { cache: 'no-store' });
        if (!r.ok) return { state: 'unknown' };
        proof = (await r.json()).hashes.map((h) => b64.decode(h));
      } catch {
        return { state: 'unknown' };
      }
    }
    if (!(await verifyConsistency(subtle, saved.size, cp.size, saved.root, cp.root, proof))) {
      return { state: 'rewritten', saved: saved.size, size: cp.size };
    }
  }
  save(storage, cp.size, rootB64);
  return { state: 'verified', size: cp.size };
}

/** The sentence the page shows for a check's result, and whether it is a warning. */
export function describeLedger(result) {
  switch (result.state) {
    case 'verified':
      return { text: `History verified through version ${result.size}.`, warn: false };
    case 'rolled-back':
      return {
        text: `Warning: the history was rolled back. This browser saw version ${result.saved}; the server now shows ${result.size}.`,
        warn: true,
      };
    case 'rewritten':
      return {
        text: `Warning: the history was rewritten. The server's version ${result.size} does not extend the version ${result.saved} this browser saw.`,
        warn: true,
      };
    default:
      return { text: '', warn: false };
  }
}
