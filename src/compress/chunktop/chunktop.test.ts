import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../util/rng';
import { chunkTopCodec, chunkTopIndices, chunkTopPack } from './chunktop';
import { blockQuantCodec, quantLevels, quantStep } from '../quant/quant';
import { ErrorFeedback } from '../error-feedback';
import { efDrift } from '../ef-drift.test-helper';

const SIZES = [0, 1, 2, 7, 31, 32, 33, 257, 1031, 65537];
const CHUNKS = [2, 3, 7, 32, 64, 100, 65536];

/** Magnitudes over three decades, so chunks have clear winners and losers. */
function update(n: number, rng: Rng): Float32Array {
  const x = rng.uniformArray(n);
  for (let i = 0; i < n; i++) x[i] *= 10 ** (-3 * rng.next());
  return x;
}

/** The kept index of every chunk, found independently: the chunk sorted by |x| descending, then index. */
function expectedIndices(x: Float32Array, chunk: number): number[] {
  const out: number[] = [];
  for (let lo = 0; lo < x.length; lo += chunk) {
    const ids = Array.from({ length: Math.min(chunk, x.length - lo) }, (_, j) => lo + j);
    ids.sort((a, b) => Math.abs(x[b]) - Math.abs(x[a]) || a - b);
    out.push(ids[0]);
  }
  return out;
}

const bits = (c: number) => Math.ceil(Math.log2(c));

test('chunk top: exact size 4·ceil(m·b/32) + 4m, the largest |x| of every chunk exact, zeros elsewhere', () => {
  for (const n of SIZES) {
    for (const chunk of CHUNKS) {
      const codec = chunkTopCodec({ chunk });
      const m = Math.ceil(n / chunk);
      assert.equal(codec.keep(n), m);
      assert.equal(codec.fixedSize, true);
      const x = update(n, new Rng(n * 131 + chunk));
      const bytes = codec.encode(x);
      const want = 4 * Math.ceil((m * bits(chunk)) / 32) + 4 * m;
      assert.equal(bytes.length, want, `n=${n} C=${chunk}`);
      assert.equal(codec.encodedBytes(n), want);
      const y = codec.decode(bytes, n);
      const kept = new Set(expectedIndices(x, chunk));
      assert.deepEqual(Array.from(chunkTopIndices(x, chunk)), [...kept], `n=${n} C=${chunk}: indices`);
      for (let i = 0; i < n; i++) assert.equal(y[i], kept.has(i) ? x[i] : 0, `n=${n} C=${chunk}: element ${i}`);
    }
  }
});

test('chunk top breaks ties by lower index, including signed zeros and a chunk of equal magnitudes', () => {
  const x = Float32Array.from([0.5, -0.5, 0.25, 0, -0, 0, 3, -3, 1, -2, 2, -2]);
  assert.deepEqual(Array.from(chunkTopIndices(x, 3)), [0, 3, 6, 9]);
  assert.deepEqual(Array.from(chunkTopIndices(x, 4)), [0, 6, 9]);
  const y = chunkTopCodec({ chunk: 3 }).decode(chunkTopCodec({ chunk: 3 }).encode(x), x.length);
  assert.deepEqual(Array.from(y), [0.5, 0, 0, 0, 0, 0, 3, 0, 0, -2, 0, 0]);
});

test('chunk top → 2-bit values: kept values within half a step, fixed size, odd sizes', () => {
  const q2 = blockQuantCodec({ bits: 2, block: 64, rounding: 'nearest' });
  const L = quantLevels(2);
  for (const n of [1, 31, 33, 1031, 21877]) {
    const chunk = 32;
    const codec = chunkTopCodec({ chunk, values: q2 });
    const m = Math.ceil(n / chunk);
    const x = update(n, new Rng(7000 + n));
    const bytes = codec.encode(x);
    assert.equal(bytes.length, 4 * Math.ceil((5 * m) / 32) + q2.encodedBytes(m), `n=${n}`);
    assert.equal(codec.encodedBytes(n), bytes.length);
    const y = codec.decode(bytes, n);
    const idx = expectedIndices(x, chunk);
    for (let lo = 0; lo < m; lo += 64) {
      const block = idx.slice(lo, lo + 64);
      const s = quantStep(Math.max(...block.map((i) => Math.abs(x[i]))), L);
      for (const i of block) assert.ok(Math.abs(y[i] - x[i]) <= s / 2 + 2 * L * 2 ** -24 * s, `n=${n}: element ${i}`);
    }
    const keptSet = new Set(idx);
    for (let i = 0; i < n; i++) if (!keptSet.has(i)) assert.equal(y[i], 0, `n=${n}: dropped element ${i}`);
  }
  // 21,877 values (the demo MLP) in chunks of 32: 684 kept, 5 bits each; 2 bits per value + a scale per 64.
  assert.equal(
    chunkTopCodec({ chunk: 32, values: q2 }).encodedBytes(21877),
    4 * Math.ceil((684 * 5) / 32) + 4 * 11 + 4 * Math.ceil((684 * 2) / 32),
  );
});

test('chunk top decode refuses wrong lengths, offsets past a short last chunk and stray padding bits', () => {
  const codec = chunkTopCodec({ chunk: 8 });
  const n = 21; // chunks of 8, 8, 5: three 3-bit offsets in one word, then 3 f32 values
  const x = update(n, new Rng(5));
  const bytes = codec.encode(x);
  assert.equal(bytes.length, 4 + 12);
  assert.throws(
    () => codec.decode(bytes.subarray(0, 15), n),
    /chunktop\(8\)>f32 decode: expected 16 bytes for 21 values \(3 chunks, 3-bit offsets\), got 15/,
  );
  assert.throws(() => codec.decode(bytes, 25), /expected 20 bytes for 25 values \(4 chunks, 3-bit offsets\), got 16/);
  const bad = bytes.slice();
  const dv = new DataView(bad.buffer);
  dv.setUint32(0, (dv.getUint32(0, true) & ~(7 << 6)) | (6 << 6), true); // chunk 2 (5 values) at offset 6
  assert.throws(() => codec.decode(bad, n), /chunk 2 names offset 6, past its 5 values/);
  const pad = bytes.slice();
  new DataView(pad.buffer).setUint32(0, new DataView(pad.buffer).getUint32(0, true) | (1 << 9), true);
  assert.throws(() => codec.decode(pad, n), /the bits after the last offset must be 0/);
  assert.throws(() => codec.encode(Float32Array.from([1, NaN, 2])), /NaN/);
  assert.throws(() => chunkTopCodec({ chunk: 1 }), /the chunk length must be an integer in \[2, 65536\], got 1/);
  assert.throws(
    () => chunkTopPack(Uint32Array.from([3, 8, 8]), Float32Array.from([1, 2, 3]), 10, 4, codec.values),
    /index 8 is outside chunk 1/,
  );
});

test('error feedback with chunk top: the residual contracts (||r||² <= (1 − 1/C)·||d||²) and the sums track each other', () => {
  const n = 1000;
  const chunk = 10;
  const codec = chunkTopCodec({ chunk });
  const rng = new Rng(11);
  const ef = new ErrorFeedback(codec, n);
  const norm2 = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v * v, 0);
  for (let r = 0; r < 40; r++) {
    const x = update(n, rng);
    const d2 = norm2(Float32Array.from(x, (v, i) => v + ef.residual[i]));
    ef.encode(x);
    assert.ok(norm2(ef.residual) <= (1 - 1 / chunk) * d2 * (1 + 1e-6), `round ${r}: contraction`);
  }
  const rounds = 100;
  const { balanceErr, driftEf, driftPlain } = efDrift(codec, 500, { rngSeed: 25, ctxSeed: 4, rounds });
  balanceErr.forEach((e, i) => assert.ok(e <= rounds * 1e-5, `element ${i}`));
  assert.ok(driftPlain > 3 * driftEf, `mean drift without ${driftPlain}, with ${driftEf}`);
});
