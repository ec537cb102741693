// The app's ledger check: RFC 9162 consistency proofs against transparency-dev/merkle's
// reference vectors, and the saved-checkpoint flow (trust on first use, extension, rollback,
// rewrite) with fake fetch and storage.
import test from 'node:test';
import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';
import { checkLedger, describeLedger, parseCheckpoint, verifyConsistency, SAVED_CHECKPOINT } from '../../web/js/ledger.mjs';

const subtle = webcrypto.subtle;
const hex = (s) => Uint8Array.from(s.match(/../g).map((h) => parseInt(h, 16)));
const b64 = (u) => Buffer.from(u).toString('base64');

// proof/verify_test.go: roots of the trees of 1..8 leaves, and consistency proofs.
const ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
].map(hex);
const PROOFS = [
  [1, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']],
  [6, 8, ['0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
  [2, 5, ['5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']],
  [6, 7, ['0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a', 'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
];

test('reference consistency proofs verify, and spoiled ones do not', async () => {
  for (const [m, n, p] of PROOFS) {
    const proof = p.map(hex);
    assert.equal(await verifyConsistency(subtle, m, n, ROOTS[m - 1], ROOTS[n - 1], proof), true, `${m}->${n}`);
    for (let i = 0; i < proof.length; i++) {
      const bad = proof.map((h) => h.slice());
      bad[i][0] ^= 16;
      assert.equal(await verifyConsistency(subtle, m, n, ROOTS[m - 1], ROOTS[n - 1], bad), false);
    }
    assert.equal(await verifyConsistency(subtle, m, n, ROOTS[m - 1], ROOTS[n - 1], proof.slice(0, -1)), false);
    assert.equal(await verifyConsistency(subtle, m, n, ROOTS[m - 1], ROOTS[n - 1], [...proof, ROOTS[0]]), false);
    assert.equal(await verifyConsistency(subtle, m, n, ROOTS[n - 1], ROOTS[n - 1], proof), false);
  }
  assert.equal(await verifyConsistency(subtle, 3, 3, ROOTS[2], ROOTS[2], []), true);
  assert.equal(await verifyConsistency(subtle, 3, 3, ROOTS[2], ROOTS[3], []), false);
  assert.equal(await verifyConsistency(subtle, 4, 3, ROOTS[3], ROOTS[2], []), false);
});

test('checkpoints parse, signed or not', () => {
  const cp = parseCheckpoint(`log.example\n8\n${b64(ROOTS[7])}\n\n— log.example AAAA\n`);
  assert.equal(cp.size, 8);
  assert.deepEqual(cp.root, ROOTS[7]);
  assert.equal(parseCheckpoint('x\n08\nAAAA\n'), null);
  assert.equal(parseCheckpoint(`x\n1\n${b64(new Uint8Array(31))}\n`), null);
  assert.equal(parseCheckpoint('garbage'), null);
});

/** A server whose log is the reference tree at `size`, with the reference proofs. */
function server(state) {
  return async (url) => {
    const u = new URL(url, 'http://x');
    if (u.pathname === '/api/audit/checkpoint') {
      return { ok: true, text: async () => `number-acidizer/unsigned\n${state.size}\n${b64(state.roots[state.size - 1])}\n` };
    }
    const from = Number(u.searchParams.get('from'));
    const to = Number(u.searchParams.get('to'));
    const p = PROOFS.find(([m, n]) => m === from && n === to);
    return p ? { ok: true, json: async () => ({ hashes: p[2].map((h) => b64(hex(h))) }) } : { ok: false };
  };
}

function storage() {
  const m = new Map();
  return { getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, v), map: m };
}

test('trust on first use, then every newer checkpoint must extend the saved one', async () => {
  const state = { size: 6, roots: ROOTS };
  const store = storage();
  const fetch = server(state);
  assert.deepEqual(await checkLedger({ fetch, storage: store, subtle }), { state: 'verified', size: 6 });
  assert.equal(JSON.parse(store.getItem(SAVED_CHECKPOINT)).size, 6);
  state.size = 8;
  assert.deepEqual(await checkLedger({ fetch, storage: store, subtle }), { state: 'verified', size: 8 });
  // Rolled back to an earlier size: loud, and the saved checkpoint stays.
  state.size = 7;
  const back = await checkLedger({ fetch, storage: store, subtle });
  assert.deepEqual(back, { state: 'rolled-back', saved: 8, size: 7 });
  assert.equal(JSON.parse(store.getItem(SAVED_CHECKPOINT)).size, 8);
  assert.equal(describeLedger(back).warn, true);
  assert.match(describeLedger({ state: 'verified', size: 8 }).text, /verified through version 8/);
});

test('a rewritten history is caught', async () => {
  const store = storage();
  store.setItem(SAVED_CHECKPOINT, JSON.stringify({ size: 6, root: b64(ROOTS[6]) })); // not the root of 6
  const r = await checkLedger({ fetch: server({ size: 8, roots: ROOTS }), storage: store, subtle });
  assert.deepEqual(r, { state: 'rewritten', saved: 6, size: 8 });
  assert.match(describeLedger(r).text, /rewritten/);
  // The same size with another root is a rewrite too.
  store.setItem(SAVED_CHECKPOINT, JSON.stringify({ size: 8, root: b64(ROOTS[6]) }));
  assert.equal((await checkLedger({ fetch: server({ size: 8, roots: ROOTS }), storage: store, subtle })).state, 'rewritten');
});

test('an unreachable log or broken storage says nothing rather than something wrong', async () => {
  const down = async () => { throw new Error('offline'); };
  assert.deepEqual(await checkLedger({ fetch: down, storage: storage(), subtle }), { state: 'unknown' });
  const broken = { getItem: () => { throw new Error('denied'); }, setItem: () => { throw new Error('denied'); } };
  assert.deepEqual(await checkLedger({ fetch: server({ size: 2, roots: ROOTS }), storage: broken, subtle }), { state: 'verified', size: 2 });
  assert.equal(describeLedger({ state: 'unknown' }).text, '');
});
