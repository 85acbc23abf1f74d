import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../util/rng';
import {
  checkContext,
  fillRandomU32,
  lowbias32,
  mulhi32,
  philox4x32,
  randomU32,
  randomUnitF32,
  u32ToUnitF32,
  PURPOSE_RANDOM_K,
  PURPOSE_STOCHASTIC_ROUNDING,
} from './prng';
import type { CodecContext } from './codec';

const hex = (a: ArrayLike<number>) => Array.from(a, (v) => v.toString(16).padStart(8, '0')).join(' ');

test('philox4x32-10 matches the Random123 known-answer vectors (tests/kat_vectors)', () => {
  // counter (4 words), key (2 words) → output (4 words), from DEShawResearch/random123 kat_vectors.
  const kat: [number[], number[], string][] = [
    [[0, 0, 0, 0], [0, 0], '6627e8d5 e169c58d bc57ac4c 9b00dbd8'],
    [[0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff], '408f276d 41c83b0e a20bc7c6 6d5451fd'],
    [[0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0], 'd16cfe09 94fdcceb 5001e420 24126ea1'],
  ];
  for (const [c, k, want] of kat) assert.equal(hex(philox4x32(c[0], c[1], c[2], c[3], k[0], k[1])), want);
});

test('mulhi32 equals the high word of the exact 64-bit product', () => {
  const rng = new Rng(1);
  const pairs: [number, number][] = [
    [0, 0],
    [0xffffffff, 0xffffffff],
    [0xffffffff, 1],
    [0x10000, 0x10000],
    [0xd2511f53, 0xffffffff],
  ];
  for (let i = 0; i < 2000; i++) pairs.push([rng.nextU32(), rng.nextU32()]);
  for (const [a, b] of pairs) assert.equal(mulhi32(a, b), Number((BigInt(a) * BigInt(b)) >> 32n), `${a}·${b}`);
});

test('lowbias32 follows its written-down steps (BigInt reference) and is a bijection on a sample', () => {
  const ref = (x: bigint) => {
    const M = 0xffffffffn;
    x ^= x >> 16n;
    x = (x * 0x7feb352dn) & M;
    x ^= x >> 15n;
    x = (x * 0x846ca68bn) & M;
    x ^= x >> 16n;
    return Number(x);
  };
  const rng = new Rng(2);
  for (const x of [0, 1, 0xffffffff, 0x80000000, ...Array.from({ length: 500 }, () => rng.nextU32())]) {
    assert.equal(lowbias32(x), ref(BigInt(x)), `x=${x}`);
  }
  assert.equal(lowbias32(0), 0);
  const seen = new Set<number>();
  for (let x = 0; x < 1 << 16; x++) seen.add(lowbias32(x));
  assert.equal(seen.size, 1 << 16);
});

test('element i of a context is word i mod 4 of the Philox block (i/4, round, stream, purpose) keyed by (seed, 0)', () => {
  const ctx: CodecContext = { seed: 0xa4093822, round: 0x85a308d3, stream: 0x13198a2e };
  const direct = philox4x32(0x243f6a88, ctx.round, ctx.stream, 0x03707344, ctx.seed, 0);
  const base = 4 * 0x243f6a88;
  for (let j = 0; j < 4; j++) assert.equal(randomU32(ctx, 0x03707344, base + j), direct[j]);
  const filled = fillRandomU32(ctx, 0x03707344, base - 3, new Uint32Array(11));
  for (let j = 0; j < 11; j++) assert.equal(filled[j], randomU32(ctx, 0x03707344, base - 3 + j), `fill ${j}`);
  const zero = philox4x32(0, 0, 0, 0, 0, 0);
  assert.equal(randomU32({ seed: 0, round: 0, stream: 0 }, 0, 2), zero[2]);
  assert.equal(randomU32({ seed: 0, round: 0, stream: 0 }, 0, 2), 0xbc57ac4c);
  assert.equal(u32ToUnitF32(0xbc57ac4c), 0xbc57ac * 2 ** -24);
  assert.equal(u32ToUnitF32(0xffffffff), 1 - 2 ** -24);
  assert.equal(u32ToUnitF32(0xff), 0);
});

/** Pearson chi-square of counts against equal expected counts. */
function chiSquare(counts: ArrayLike<number>, total: number): number {
  const e = total / counts.length;
  let s = 0;
  for (let i = 0; i < counts.length; i++) s += (counts[i] - e) ** 2 / e;
  return s;
}
// Chi-square quantiles at p = 0.999 (Wilson–Hilferty): 63 degrees of freedom → 103.4, 255 → 330.5.
const CHI2_63 = 103.4;
const CHI2_255 = 330.5;

test('uniform floats: 64-bucket chi-square below the 0.999 quantile (103.4) for several contexts', () => {
  const N = 1 << 16;
  for (const ctx of [
    { seed: 0, round: 0, stream: 0 },
    { seed: 12345, round: 7, stream: 3 },
    { seed: 0xffffffff, round: 0xffffffff, stream: 0xffffffff },
  ]) {
    const u = fillRandomU32(ctx, PURPOSE_STOCHASTIC_ROUNDING, 0, new Uint32Array(N));
    const counts = new Array(64).fill(0);
    let sum = 0;
    for (let i = 0; i < N; i++) {
      const f = u32ToUnitF32(u[i]);
      assert.ok(f >= 0 && f < 1 && Math.fround(f) === f);
      counts[Math.floor(f * 64)]++;
      sum += f;
    }
    const chi = chiSquare(counts, N);
    assert.ok(chi < CHI2_63, `chi-square ${chi.toFixed(1)} for ${JSON.stringify(ctx)}`);
    // Mean of N uniforms: sd = sqrt(1/12/N) ≈ 0.00113; 5 sd.
    assert.ok(Math.abs(sum / N - 0.5) < 0.0057, `mean ${sum / N}`);
    // Every output bit is set about half the time: binomial sd = 128, allow 5 sd.
    for (let b = 0; b < 32; b++) {
      let ones = 0;
      for (let i = 0; i < N; i++) ones += (u[i] >>> b) & 1;
      assert.ok(Math.abs(ones - N / 2) < 640, `bit ${b}: ${ones} ones of ${N}`);
    }
  }
});

test('streams, rounds, seeds, purposes and neighbouring elements are independent: 16×16 joint chi-square below 330.5', () => {
  const N = 1 << 15;
  const base: CodecContext = { seed: 99, round: 4, stream: 10 };
  const p = PURPOSE_STOCHASTIC_ROUNDING;
  const draw = (ctx: CodecContext, purpose: number, start = 0) =>
    fillRandomU32(ctx, purpose, start, new Uint32Array(N));
  const a = draw(base, p);
  const others: [string, Uint32Array][] = [
    ['next stream', draw({ ...base, stream: 11 }, p)],
    ['next round', draw({ ...base, round: 5 }, p)],
    ['next seed', draw({ ...base, seed: 100 }, p)],
    ['other purpose', draw(base, PURPOSE_RANDOM_K)],
    ['next element', draw(base, p, 1)],
    ['element + 4', draw(base, p, 4)],
  ];
  for (const [what, b] of others) {
    const counts = new Array(256).fill(0);
    let same = 0;
    for (let i = 0; i < N; i++) {
      counts[(a[i] >>> 28) * 16 + (b[i] >>> 28)]++;
      if (a[i] === b[i]) same++;
    }
    const chi = chiSquare(counts, N);
    assert.ok(chi < CHI2_255, `${what}: joint chi-square ${chi.toFixed(1)}`);
    assert.ok(same <= 1, `${what}: ${same} equal words`);
  }
});

test('contexts are validated: missing when required, non-integers, negatives and values past 2^32', () => {
  assert.doesNotThrow(() => checkContext(undefined, 'x', false));
  assert.throws(
    () => checkContext(undefined, 'q4 encode', true),
    (e: unknown) => e instanceof RangeError && /q4 encode: a codec context .* is required/.test(e.message),
  );
  assert.throws(
    () => checkContext({ seed: -1, round: 0, stream: 0 }, 'w', true),
    /w: ctx\.seed must be an integer in \[0, 4294967295\], got -1/,
  );
  assert.throws(() => checkContext({ seed: 1, round: 1.5, stream: 0 }, 'w', false), /ctx\.round .* got 1\.5/);
  assert.throws(
    () => checkContext({ seed: 1, round: 1, stream: 2 ** 32 }, 'w', false),
    /ctx\.stream .* got 4294967296/,
  );
  assert.throws(() => checkContext({ seed: 1, round: 1 } as CodecContext, 'w', false), /ctx\.stream .* got undefined/);
  assert.throws(() => checkContext({ seed: NaN, round: 1, stream: 1 }, 'w', false), /ctx\.seed .* got NaN/);
  assert.equal(
    randomUnitF32({ seed: 1, round: 2, stream: 3 }, 1, 5),
    u32ToUnitF32(randomU32({ seed: 1, round: 2, stream: 3 }, 1, 5)),
  );
});
