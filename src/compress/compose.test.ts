import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../util/rng';
import type { CodecContext } from './codec';
import { composeCodecs, isSparseCodec } from './compose';
import { randomkCodec, randomkIndices } from './randomk/randomk';
import { topkCodec, topkIndices, TOPK_DELTA, TOPK_RICE } from './topk/topk';
import { blockQuantCodec } from './quant/quant';
import { f16Codec } from './plain/plain';
import { efDrift } from './ef-drift.test-helper';

const SIZES = [1, 7, 257, 1031, 65537];
const CTX: CodecContext = { seed: 31, round: 2, stream: 4 };

function update(n: number, rng: Rng): Float32Array {
  const x = rng.uniformArray(n);
  for (let i = 0; i < n; i++) x[i] *= 10 ** (-3 * rng.next());
  return x;
}

/** CocktailSGD: random-k 1/2, then top-k 1/5 of the survivors, then 4-bit stochastic values. */
const q4 = blockQuantCodec({ bits: 4, block: 64, rounding: 'stochastic' });
const cocktail = composeCodecs(randomkCodec({ fraction: 0.5 }), topkCodec({ fraction: 0.2 }), q4);

test('random-k → top-k → q4: the kept set, errors within one step, and the header-implied exact length', () => {
  assert.equal(cocktail.name, 'randomk(0.5)>topk(0.2)>q4-block64-stochastic');
  assert.equal(cocktail.fixedSize, false);
  for (const n of SIZES) {
    const x = update(n, new Rng(n));
    const k1 = Math.max(1, Math.ceil(0.5 * n));
    const k2 = Math.max(1, Math.ceil(0.2 * k1));
    // Reference: random-k's indices in draw order, then top-k over those values (ties to lower j).
    const r = randomkIndices(CTX, n, k1);
    const survivors = Float32Array.from(r, (i) => x[i]);
    const t = topkIndices(survivors, k2);
    const keptIdx = Array.from(t, (j) => r[j]);
    const bytes = cocktail.encode(x, CTX);
    // Random-k adds nothing: the payload is top-k's (header, indices into the k1 survivors, q4 of k2).
    const dv = new DataView(bytes.buffer);
    assert.equal(dv.getUint32(0, true), k2);
    const fmt = dv.getUint32(4, true);
    const mode = fmt & 0xff;
    const ib =
      mode === TOPK_DELTA
        ? 4 * Math.ceil((k2 * (fmt >>> 8)) / 32)
        : mode === TOPK_RICE
          ? 4 + 4 * dv.getUint32(8, true)
          : 4 * Math.ceil(k1 / 32);
    assert.equal(bytes.length, 8 + ib + q4.encodedBytes(k2), `n=${n}`);
    assert.ok(bytes.length <= cocktail.encodedBytes(n));
    assert.equal(cocktail.encodedBytes(n), topkCodec({ fraction: 0.2, values: q4 }).encodedBytes(k1));
    const y = cocktail.decode(bytes, n, CTX);
    const kept = new Set(keptIdx);
    keptIdx.forEach((i, j) => {
      const step = dv.getFloat32(8 + ib + 4 * Math.floor(j / 64), true);
      assert.ok(Math.abs(y[i] - x[i]) <= step * (1 + 1e-5), `n=${n} kept element ${i}: ${y[i]} vs ${x[i]}`);
    });
    for (let i = 0; i < n; i++) if (!kept.has(i)) assert.equal(y[i], 0, `n=${n} dropped element ${i}`);
  }
});

test('compositions keep the size rules: random-k over a fixed-size codec is fixed and exact', () => {
  const q8 = blockQuantCodec({ bits: 8, block: 128, rounding: 'nearest' });
  const rk = composeCodecs(randomkCodec({ fraction: 0.1 }), q8);
  assert.equal(rk.fixedSize, true);
  for (const n of SIZES) {
    const k = Math.max(1, Math.ceil(0.1 * n));
    const bytes = rk.encode(update(n, new Rng(100 + n)), CTX);
    assert.equal(bytes.length, q8.encodedBytes(k));
    assert.equal(rk.encodedBytes(n), bytes.length);
  }
  // top-k → random-k → f16: top-k's maximum uses random-k's exact size; random-k draws over the k survivors.
  const tr = composeCodecs(topkCodec({ fraction: 0.2 }), randomkCodec({ fraction: 0.5 }), f16Codec);
  assert.equal(tr.fixedSize, false);
  for (const n of SIZES) {
    const x = update(n, new Rng(200 + n));
    const bytes = tr.encode(x, CTX);
    assert.ok(bytes.length <= tr.encodedBytes(n));
    const y = tr.decode(bytes, n, CTX);
    const k1 = Math.max(1, Math.ceil(0.2 * n));
    const k2 = Math.max(1, Math.ceil(0.5 * k1));
    let nonzero = 0;
    for (let i = 0; i < n; i++) {
      if (y[i] !== 0) {
        nonzero++;
        assert.ok(Math.abs(y[i] - x[i]) <= 2 ** -11 * Math.abs(x[i]) + 2 ** -25, `n=${n} element ${i}`);
      }
    }
    assert.equal(nonzero, k2, `n=${n}`);
  }
  assert.equal(composeCodecs(q8), q8);
  assert.ok(isSparseCodec(topkCodec({ fraction: 0.5 })) && !isSparseCodec(q8));
});

test('composition is reproducible from the context, changes with the round, and checks its input', () => {
  const x = update(1031, new Rng(7));
  const a = cocktail.encode(x, CTX);
  assert.deepEqual(cocktail.encode(x, { ...CTX }), a);
  assert.notDeepEqual(cocktail.encode(x, { ...CTX, round: 3 }), a);
  assert.throws(
    () => cocktail.encode(x),
    /randomk\(0\.5\)>topk\(0\.2\)>q4-block64-stochastic encode: a codec context .* is required/,
  );
  assert.throws(() => cocktail.decode(a, 1031), /decode: a codec context .* is required/);
  assert.throws(() => cocktail.encode(x, { seed: 1, round: 1, stream: -1 }), /ctx\.stream must be an integer/);
  // Wrong lengths are caught by the stage that owns the bytes (top-k's header-implied length here).
  assert.throws(
    () => cocktail.decode(a.subarray(0, a.length - 4), 1031, CTX),
    (e: unknown) => {
      return (
        e instanceof RangeError &&
        new RegExp(`expected ${a.length} bytes for 516 values .*got ${a.length - 4}`).test(e.message)
      );
    },
  );
  assert.throws(() => cocktail.decode(a, 1000, CTX), /header says k = 104, expected k = 100 for 500 values/);
  const bad = update(1031, new Rng(8));
  bad[1030] = Infinity;
  assert.throws(() => cocktail.encode(bad, CTX), /element 1030 of 1031 is Infinity/);
  assert.throws(() => composeCodecs(), /at least one codec/);
  assert.throws(
    () => composeCodecs(q4, topkCodec({ fraction: 0.1 })),
    /stage 0 \(q4-block64-stochastic\) is not a sparsifier/,
  );
});

test('error feedback with the CocktailSGD composition: the sums track each other, unlike without it', () => {
  const rounds = 100;
  const { given, balanceErr, driftEf, driftPlain } = efDrift(cocktail, 800, { rngSeed: 9, ctxSeed: 6, rounds });
  for (let i = 0; i < given.length; i++) {
    assert.ok(balanceErr[i] <= rounds * 2e-5 * (1 + Math.abs(given[i])), `element ${i}`);
  }
  // 10% of the values leave per round. Plain: the drift of element i is ~ 0.9·100·|mean_i| (≈ 45 on
  // average) as most of every input is dropped. With error feedback each residual is what built up
  // since the element was last sent: a few rounds' worth (the mean |x| is ~0.5, and large residuals
  // win top-k), so the average stays near 10 rounds of input.
  assert.ok(driftEf < 10, `mean drift with error feedback ${driftEf}`);
  assert.ok(driftPlain > 4 * driftEf, `mean drift without ${driftPlain}, with ${driftEf}`);
});
