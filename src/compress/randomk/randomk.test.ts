import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../util/rng';
import type { CodecContext } from '../codec';
import { feistelHalfBits, feistelKeys, feistelPermute, randomkCodec, randomkIndices } from './randomk';
import { blockQuantCodec } from '../quant/quant';
import { efDrift } from '../ef-drift.test-helper';

const SIZES = [1, 7, 257, 1031, 65537];
const CTX: CodecContext = { seed: 17, round: 5, stream: 2 };

function update(n: number, rng: Rng): Float32Array {
  const x = rng.uniformArray(n);
  for (let i = 0; i < n; i++) x[i] *= 10 ** (-3 * rng.next());
  return x;
}

test('random-k: exactly values.encodedBytes(k) bytes, k distinct indices, kept values exact, the rest zero', () => {
  for (const n of SIZES) {
    for (const fraction of [0.001, 0.1, 0.5, 1]) {
      const codec = randomkCodec({ fraction });
      const k = Math.max(1, Math.ceil(fraction * n));
      assert.equal(codec.keep(n), k);
      assert.equal(codec.fixedSize, true);
      const x = update(n, new Rng(n + fraction * 1e6));
      const bytes = codec.encode(x, CTX);
      assert.equal(bytes.length, 4 * k, `n=${n} f=${fraction}`);
      assert.equal(codec.encodedBytes(n), bytes.length);
      const idx = randomkIndices(CTX, n, k);
      assert.equal(new Set(idx).size, k, 'distinct');
      for (const i of idx) assert.ok(i < n);
      const y = codec.decode(bytes, n, CTX);
      const kept = new Set(idx);
      for (let i = 0; i < n; i++) assert.equal(y[i], kept.has(i) ? x[i] : 0, `n=${n} f=${fraction} element ${i}`);
      // The payload is the kept values in draw order j = 0..k−1.
      const dv = new DataView(bytes.buffer);
      for (let j = 0; j < Math.min(k, 50); j++) assert.equal(dv.getFloat32(4 * j, true), x[idx[j]]);
    }
  }
});

test('the Feistel permutation with cycle walking is a bijection on [0, n) for small and odd n', () => {
  for (const n of [1, 2, 3, 7, 16, 17, 257, 1031, 4096]) {
    const h = feistelHalfBits(n);
    assert.ok(4 ** h >= n && (n <= 4 || 4 ** h < 4 * n), `n=${n}: domain 4^${h}`);
    const keys = feistelKeys(CTX);
    const seen = new Set<number>();
    for (let j = 0; j < n; j++) seen.add(feistelPermute(j, n, h, keys));
    assert.equal(seen.size, n);
    assert.ok([...seen].every((v) => v < n));
  }
  assert.equal(feistelHalfBits(65537), 9);
  assert.equal(feistelHalfBits(2 ** 32), 16);
});

test('random-k picks every index about equally often: chi-square over 2000 rounds below the 0.999 quantile', () => {
  // n = 257, k = 26: each round marks 26 of 257 indices; over R rounds index i is picked ~ R·k/n times.
  const n = 257;
  const k = 26;
  const R = 2000;
  const counts = new Array(n).fill(0);
  const pairs = new Map<number, number>();
  for (let r = 0; r < R; r++) {
    const idx = randomkIndices({ seed: 3, round: r, stream: 9 }, n, k);
    for (const i of idx) counts[i]++;
    pairs.set(idx[0] * n + idx[1], (pairs.get(idx[0] * n + idx[1]) ?? 0) + 1);
  }
  const e = (R * k) / n;
  // Each count is hypergeometric-like with variance e·(1 − k/n); scale the chi-square by that.
  const chi = counts.reduce((s, c) => s + (c - e) ** 2, 0) / (e * (1 - k / n));
  // 256 degrees of freedom: the 0.999 quantile is about 331.8 (Wilson–Hilferty).
  assert.ok(chi < 331.8, `chi-square ${chi.toFixed(1)}`);
  // The first two draws are rarely the same pair (R = 2000 over 257·256 ordered pairs).
  assert.ok(Math.max(...pairs.values()) <= 3, 'first-pair repeats');
});

test('random-k indices are reproducible from the context and differ between rounds, streams and seeds', () => {
  const x = update(1031, new Rng(20));
  const codec = randomkCodec({ fraction: 0.1 });
  const a = codec.encode(x, CTX);
  assert.deepEqual(codec.encode(x, { ...CTX }), a);
  const idx = randomkIndices(CTX, 1031, 104);
  for (const other of [
    { ...CTX, round: 6 },
    { ...CTX, stream: 3 },
    { ...CTX, seed: 18 },
  ]) {
    const o = randomkIndices(other, 1031, 104);
    const overlap = [...o].filter((i) => idx.includes(i)).length;
    // Independent draws overlap in about k²/n ≈ 10.5 indices; identical draws would overlap in 104.
    assert.ok(overlap < 30, `${JSON.stringify(other)}: overlap ${overlap}`);
    assert.notDeepEqual(codec.encode(x, other), a);
  }
  // Decoding with another round's context puts the values elsewhere.
  const y = codec.decode(a, 1031, { ...CTX, round: 6 });
  assert.notDeepEqual(y, codec.decode(a, 1031, CTX));
});

test('random-k rejects a missing or bad context, wrong lengths, NaN and bad options', () => {
  const codec = randomkCodec({ fraction: 0.1 });
  const x = update(257, new Rng(21));
  assert.throws(
    () => codec.encode(x),
    (e: unknown) => e instanceof RangeError && /randomk\(0\.1\)>f32 encode: a codec context/.test(e.message),
  );
  const bytes = codec.encode(x, CTX);
  assert.throws(() => codec.decode(bytes, 257), /randomk\(0\.1\)>f32 decode: a codec context/);
  assert.throws(
    () => codec.encode(x, { seed: 2 ** 32, round: 0, stream: 0 }),
    /ctx\.seed must be an integer in \[0, 4294967295\], got 4294967296/,
  );
  assert.throws(
    () => codec.decode(bytes.subarray(4), 257, CTX),
    /expected 104 bytes for 257 values \(k = 26\), got 100/,
  );
  assert.throws(() => codec.decode(bytes, 300, CTX), /expected 120 bytes for 300 values \(k = 30\), got 104/);
  x[3] = NaN;
  assert.throws(() => codec.encode(x, CTX), /element 3 of 257 is NaN/);
  assert.throws(() => randomkCodec({ fraction: -0.1 }), /fraction must be a number in \(0, 1\], got -0\.1/);
  assert.throws(
    () => randomkCodec({ fraction: 0.1, scale: 'double' as 'none' }),
    /scale must be 'none' or 'unbiased', got double/,
  );
  assert.throws(() => randomkIndices(CTX, 10, 11), /k must be an integer in \[0, 10\], got 11/);
  assert.equal(codec.encode(new Float32Array(0), CTX).length, 0);
  assert.deepEqual(codec.decode(new Uint8Array(0), 0, CTX), new Float32Array(0));
});

test('random-k with unbiased scaling: the mean over 3000 rounds is x within 5 sd', () => {
  const n = 50;
  const codec = randomkCodec({ fraction: 0.2, scale: 'unbiased' });
  const x = update(n, new Rng(22));
  const R = 3000;
  const sum = new Float64Array(n);
  for (let r = 0; r < R; r++) {
    const ctx = { seed: 1, round: r, stream: 0 };
    const y = codec.decode(codec.encode(x, ctx), n, ctx);
    for (let i = 0; i < n; i++) sum[i] += y[i];
  }
  const p = 10 / n;
  for (let i = 0; i < n; i++) {
    // Each round decodes x·n/k with probability k/n, else 0: sd = |x|·sqrt((1 − p)/p)/sqrt(R).
    const sd = (Math.abs(x[i]) * Math.sqrt((1 - p) / p)) / Math.sqrt(R);
    assert.ok(Math.abs(sum[i] / R - x[i]) <= 5 * sd, `element ${i}: mean ${sum[i] / R} vs ${x[i]}`);
  }
});

test('random-k → 2-bit stochastic: fixed size, kept values within one step, reproducible', () => {
  const q2 = blockQuantCodec({ bits: 2, block: 32, rounding: 'stochastic' });
  const codec = randomkCodec({ fraction: 0.25, values: q2 });
  for (const n of [7, 1031, 65537]) {
    const k = codec.keep(n);
    const x = update(n, new Rng(23 + n));
    const bytes = codec.encode(x, CTX);
    assert.equal(bytes.length, q2.encodedBytes(k));
    assert.equal(codec.encodedBytes(n), bytes.length);
    assert.deepEqual(codec.encode(x, CTX), bytes);
    const idx = randomkIndices(CTX, n, k);
    const y = codec.decode(bytes, n, CTX);
    const dv = new DataView(bytes.buffer);
    idx.forEach((i, j) => {
      const step = dv.getFloat32(4 * Math.floor(j / 32), true);
      assert.ok(Math.abs(y[i] - x[i]) <= step * (1 + 1e-6), `n=${n} element ${i}`);
    });
  }
});

test('error feedback with unscaled random-k: the sum of decoded updates tracks the sum of inputs', () => {
  const rounds = 100;
  const { balanceErr, driftEf, driftPlain } = efDrift(randomkCodec({ fraction: 0.1 }), 500, {
    rngSeed: 24,
    ctxSeed: 4,
    rounds,
  });
  balanceErr.forEach((e, i) => assert.ok(e <= rounds * 1e-5, `element ${i}`));
  // With error feedback an element's residual is the sum of its inputs since it was last picked:
  // E|r_i| <= E[rounds since last pick]·max|x| = ((1 − p)/p)·1.3 = 11.7 for p = k/n = 0.1. Plain
  // random-k drops a fraction 1 − p of every input: E|drift_i| ≈ 0.9·100·|mean_i| ≈ 45 on average.
  assert.ok(driftEf < 11.7, `mean drift with error feedback ${driftEf}`);
  assert.ok(driftPlain > 3 * driftEf, `mean drift without ${driftPlain}, with ${driftEf}`);
});
