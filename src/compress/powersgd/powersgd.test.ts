import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../util/rng';
import { svd } from '../../model/svd';
import { withSpectrum } from '../../model/svd.test-helper';
import type { CodecContext } from '../codec';
import { ErrorFeedback } from '../error-feedback';
import { orthonormalizeColumns, powerSgdBytes, powerSgdCodec, POWERSGD_TINY } from './powersgd';

const ctx = (round = 0, seed = 11, stream = 0): CodecContext => ({ seed, round, stream });

/**
 * A [rows, cols] matrix of rank exactly k (for random factors), exactly representable in f32:
 * A·Bᵀ with entries ±(1..8)/8, so every product has ≤ 8 significant bits and the sums are exact.
 */
function lowRank(rows: number, cols: number, k: number, rng: Rng): Float32Array {
  const pick = () => ((1 + rng.int(8)) * (rng.next() < 0.5 ? -1 : 1)) / 8;
  const A = Array.from({ length: rows * k }, pick);
  const B = Array.from({ length: cols * k }, pick);
  const M = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      let s = 0;
      for (let c = 0; c < k; c++) s += A[i * k + c] * B[j * k + c];
      M[i * cols + j] = s;
    }
  }
  return M;
}

function frob(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return Math.sqrt(s);
}

function diffNorm(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s);
}

/** P [rows, r] and Q' [cols, r] read back from a payload (f32 little-endian, P first). */
function factors(bytes: Uint8Array, rows: number, cols: number, r: number): { P: number[]; Q: number[] } {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const all = Array.from({ length: r * (rows + cols) }, (_, i) => dv.getFloat32(4 * i, true));
  return { P: all.slice(0, rows * r), Q: all.slice(rows * r) };
}

/** max |PᵀP − I| over the entries. */
function orthoError(P: ArrayLike<number>, len: number, r: number): number {
  let worst = 0;
  for (let a = 0; a < r; a++) {
    for (let b = 0; b < r; b++) {
      let s = 0;
      for (let j = 0; j < len; j++) s += P[j * r + a] * P[j * r + b];
      worst = Math.max(worst, Math.abs(s - (a === b ? 1 : 0)));
    }
  }
  return worst;
}

/**
 * One round's f32 rounding bound when rank(M) ≤ r: ‖decode − M‖_F ≤ (2 + 2√r)·2^-24·‖M‖_F (+ f64
 * slack).
 */
const exactBound = (r: number, norm: number) => ((2 + 2 * Math.sqrt(r)) * 2 ** -24 * 1.01 + 1e-12) * norm;

const EXACT_CASES: [rows: number, cols: number, r: number, k: number][] = [
  [1, 1, 1, 1],
  [1, 7, 1, 1],
  [7, 1, 1, 1],
  [13, 257, 3, 3],
  [257, 13, 3, 2],
  [24, 24, 3, 1],
  [20, 9, 4, 4],
];

for (const [rows, cols, r, k] of EXACT_CASES) {
  test(`powersgd ${rows}×${cols} rank ${r} on a rank-${k} matrix: exact size, orthonormal P, exact round trip`, () => {
    const rng = new Rng(rows * 1000 + cols * 10 + k);
    const M = lowRank(rows, cols, k, rng);
    const codec = powerSgdCodec(rows, cols, r);
    const bytes = codec.encode(M, ctx(3));
    assert.equal(bytes.length, 4 * r * (rows + cols));
    assert.equal(codec.encodedBytes(rows * cols), bytes.length);
    assert.equal(powerSgdBytes(rows, cols, r), bytes.length);
    const { P } = factors(bytes, rows, cols, r);
    assert.ok(orthoError(P, rows, r) <= 4 * rows * 2 ** -24, `PᵀP − I = ${orthoError(P, rows, r)}`);
    const y = codec.decode(bytes, rows * cols);
    const err = diffNorm(y, M);
    const bound = exactBound(r, frob(M));
    assert.ok(err <= bound, `‖D − M‖ = ${err}, ‖M‖ = ${frob(M)}, bound ${bound}`);
  });
}

test('powersgd on random matrices approaches the best rank-r error (SVD) over warm-started rounds', () => {
  const rng = new Rng(21);
  const cases: { rows: number; cols: number; r: number; M: Float32Array; rounds: number; tol: number }[] = [];
  // Uniform entries: flat spectrum, small gaps, so the power iteration converges slowly.
  cases.push({ rows: 13, cols: 257, r: 2, M: rng.uniformArray(13 * 257), rounds: 12, tol: 0.02 });
  cases.push({ rows: 40, cols: 30, r: 4, M: rng.uniformArray(40 * 30), rounds: 12, tol: 0.02 });
  // A decaying spectrum (like real gradients): fast convergence.
  const s = Array.from({ length: 13 }, (_, i) => (0.6 + 0.4 * rng.next()) * 0.7 ** i);
  cases.push({ rows: 257, cols: 13, r: 3, M: Float32Array.from(withSpectrum(257, 13, s, rng)), rounds: 12, tol: 1e-4 });
  for (const { rows, cols, r, M, rounds, tol } of cases) {
    const d = svd(M, rows, cols);
    let best = 0;
    for (let i = r; i < d.k; i++) best += d.S[i] ** 2;
    best = Math.sqrt(best);
    const codec = powerSgdCodec(rows, cols, r);
    const errs: number[] = [];
    for (let t = 0; t < rounds; t++) {
      const y = codec.decode(codec.encode(M, ctx(t)), rows * cols);
      errs.push(diffNorm(y, M));
      // No rank-r approximation beats the SVD's (up to the f32 rounding of the payload).
      assert.ok(
        errs[t] >= best - exactBound(r, frob(M)),
        `${rows}×${cols} round ${t}: ${errs[t]} below the optimum ${best}`,
      );
    }
    const last = errs[rounds - 1];
    assert.ok(
      last <= best * (1 + tol),
      `${rows}×${cols} r ${r}: error ${last} after ${rounds} rounds vs best ${best} (tol ${tol})`,
    );
    assert.ok(last < errs[0], `${rows}×${cols}: warm starts improved nothing (${errs[0]} → ${last})`);
  }
});

test('powersgd sends a zero or subnormal matrix as an all-zero payload, needing no ctx, keeping the warm start', () => {
  const rows = 9,
    cols = 14,
    r = 2;
  const codec = powerSgdCodec(rows, cols, r);
  const zero = new Float32Array(rows * cols);
  const bytes = codec.encode(zero);
  assert.equal(bytes.length, powerSgdBytes(rows, cols, r));
  assert.ok(bytes.every((b) => b === 0));
  assert.ok(codec.decode(bytes, rows * cols).every((v) => v === 0));
  assert.equal(codec.started, false, 'a zero round draws no Q');

  const rng = new Rng(5);
  const sub = rng.uniformArray(rows * cols, -POWERSGD_TINY, POWERSGD_TINY);
  assert.ok(
    codec.encode(sub).every((b) => b === 0),
    'f32 subnormals (a GPU may flush them) are sent as zeros',
  );

  // A zero round between two rounds does not disturb the warm start.
  const M = rng.uniformArray(rows * cols);
  const a = powerSgdCodec(rows, cols, r);
  const b = powerSgdCodec(rows, cols, r);
  a.encode(M, ctx(0));
  b.encode(M, ctx(0));
  b.encode(zero);
  assert.deepEqual(b.encode(M), a.encode(M));
});

test('powersgd keeps zero rows and columns exactly zero, on low-rank and full-rank matrices', () => {
  const rows = 12,
    cols = 17,
    r = 3;
  const rng = new Rng(8);
  for (const M of [lowRank(rows, cols, 2, rng), rng.uniformArray(rows * cols)]) {
    for (let j = 0; j < cols; j++) M[4 * cols + j] = 0; // row 4
    for (let i = 0; i < rows; i++) M[i * cols + 9] = 0; // column 9
    const codec = powerSgdCodec(rows, cols, r);
    for (let t = 0; t < 3; t++) {
      const y = codec.decode(codec.encode(M, ctx(t)), rows * cols);
      for (let j = 0; j < cols; j++) assert.equal(y[4 * cols + j], 0, `row 4, column ${j}`);
      for (let i = 0; i < rows; i++) assert.equal(y[i * cols + 9], 0, `row ${i}, column 9`);
    }
  }
  // Rank 2 < r = 3 with a zero row: still exact (the third P column is a fresh direction).
  const M = lowRank(rows, cols, 2, rng);
  for (let j = 0; j < cols; j++) M[4 * cols + j] = 0;
  const codec = powerSgdCodec(rows, cols, r);
  const bytes = codec.encode(M, ctx());
  assert.ok(orthoError(factors(bytes, rows, cols, r).P, rows, r) <= 4 * rows * 2 ** -24);
  assert.ok(diffNorm(codec.decode(bytes, rows * cols), M) <= exactBound(r, frob(M)));
});

test('powersgd is scale-equivariant down to a matrix of norm 1e-30', () => {
  const rows = 13,
    cols = 257,
    r = 2;
  const rng = new Rng(30);
  const M = rng.uniformArray(rows * cols);
  const k = Math.round(Math.log2(1e-30 / frob(M)));
  const tiny = M.map((v) => v * 2 ** k);
  assert.ok(frob(tiny) > 0.7e-30 && frob(tiny) < 1.5e-30, `norm ${frob(tiny)}`);
  const a = powerSgdCodec(rows, cols, r);
  const b = powerSgdCodec(rows, cols, r);
  for (let t = 0; t < 3; t++) {
    const big = factors(a.encode(M, ctx(t)), rows, cols, r);
    const small = factors(b.encode(tiny, ctx(t)), rows, cols, r);
    // The power-of-two rescaling makes the work identical: same P bits, Q' exactly 2^k times.
    assert.deepEqual(small.P, big.P);
    assert.deepEqual(
      small.Q,
      big.Q.map((v) => v * 2 ** k),
    );
  }
  // A tiny low-rank matrix still round-trips within the relative bound.
  const L = lowRank(rows, cols, 2, rng);
  const kl = Math.round(Math.log2(1e-30 / frob(L)));
  const tinyL = L.map((v) => v * 2 ** kl);
  const c = powerSgdCodec(rows, cols, r);
  const y = c.decode(c.encode(tinyL, ctx()), rows * cols);
  assert.ok(diffNorm(y, tinyL) <= exactBound(r, frob(tinyL)), `${diffNorm(y, tinyL)} vs ‖M‖ ${frob(tinyL)}`);
});

test('powersgd reproduces from its ctx: same ctx same bytes, reset() and start(ctx) redraw Q', () => {
  const rows = 10,
    cols = 23,
    r = 2;
  const rng = new Rng(40);
  const inputs = [rng.uniformArray(rows * cols), rng.uniformArray(rows * cols), rng.uniformArray(rows * cols)];
  const run = (codec: ReturnType<typeof powerSgdCodec>, seed: number) =>
    inputs.map((x, t) => codec.encode(x, ctx(t, seed)));
  const a = run(powerSgdCodec(rows, cols, r), 1);
  const b = run(powerSgdCodec(rows, cols, r), 1);
  assert.deepEqual(a, b);
  assert.notDeepEqual(run(powerSgdCodec(rows, cols, r), 2)[0], a[0], 'another seed draws another Q');

  const c = powerSgdCodec(rows, cols, r);
  run(c, 1);
  c.reset();
  assert.equal(c.started, false);
  assert.throws(
    () => c.encode(inputs[0]),
    /first encode after construction or reset\(\) draws Q and needs a CodecContext/,
  );
  assert.deepEqual(run(c, 1), a, 'after reset the same ctx sequence gives the same bytes');

  // start(ctx) draws the same Q the first encode would have drawn from that ctx; later rounds read no ctx.
  const d = powerSgdCodec(rows, cols, r);
  d.start(ctx(0, 1));
  assert.equal(d.started, true);
  assert.deepEqual(
    inputs.map((x) => d.encode(x)),
    a,
  );
});

test('powersgd rejects bad shapes and ranks, wrong n, NaN input and bad payloads, naming sizes', () => {
  assert.throws(() => powerSgdCodec(13, 257, 0), /rank must be an integer in \[1, 13\] \(min of 13 × 257\), got 0/);
  assert.throws(() => powerSgdCodec(13, 257, 14), /rank must be an integer in \[1, 13\] \(min of 13 × 257\), got 14/);
  assert.throws(() => powerSgdCodec(7, 1, 2), /rank must be an integer in \[1, 1\] \(min of 7 × 1\), got 2/);
  assert.throws(() => powerSgdCodec(4, 4, 1.5), /got 1\.5/);
  assert.throws(() => powerSgdCodec(0, 4, 1), /rows must be a positive integer, got 0/);
  assert.throws(() => powerSgdCodec(4, -1, 1), /cols must be a positive integer, got -1/);
  for (const r of [0, 14]) assert.throws(() => powerSgdCodec(13, 257, r), RangeError);

  const codec = powerSgdCodec(5, 6, 2);
  assert.throws(() => codec.encodedBytes(31), /for a 5 × 6 matrix \(30 values\), got n = 31/);
  assert.throws(() => codec.encode(new Float32Array(29), ctx()), /for a 5 × 6 matrix \(30 values\), got n = 29/);
  const x = new Rng(2).uniformArray(30);
  x[17] = NaN;
  assert.throws(() => codec.encode(x, ctx()), /element 17 of 30 is NaN/);
  assert.equal(codec.started, false, 'a failed encode draws no Q');
  x[17] = 0.25;
  const bytes = codec.encode(x, ctx());
  assert.equal(bytes.length, 88);
  assert.throws(
    () => codec.decode(bytes.subarray(4), 30),
    /expected 88 bytes \(4·2·\(5 \+ 6\)\) for a 5 × 6 matrix at rank 2, got 84/,
  );
  assert.throws(() => codec.decode(new Uint8Array(92), 30), /expected 88 bytes .* got 92/);
  assert.throws(() => codec.decode(bytes, 36), /for a 5 × 6 matrix \(30 values\), got n = 36/);
  const bad = bytes.slice();
  new DataView(bad.buffer).setFloat32(4 * (10 + 3), Infinity, true); // Q'[1, 1]
  assert.throws(() => codec.decode(bad, 30), /Q'\[1, 1\] is Infinity; payload values must be finite/);
  new DataView(bad.buffer).setFloat32(4 * 3, NaN, true); // P[1, 1]
  assert.throws(() => codec.decode(bad, 30), /P\[1, 1\] is NaN/);
  // Decodes from a view at an unaligned offset.
  const shifted = new Uint8Array(bytes.length + 3);
  shifted.set(bytes, 3);
  assert.deepEqual(codec.decode(shifted.subarray(3), 30), codec.decode(bytes, 30));
});

test('orthonormalizeColumns replaces zero and repeated columns by fresh coordinate directions', () => {
  const len = 6,
    r = 4;
  const rng = new Rng(50);
  const V = new Float64Array(len * r);
  for (let j = 0; j < len; j++) {
    V[j * r + 0] = rng.next() - 0.5;
    V[j * r + 1] = 0; // zero column
    V[j * r + 2] = 3 * V[j * r + 0]; // parallel to column 0
    V[j * r + 3] = rng.next() - 0.5;
  }
  const replaced = orthonormalizeColumns(V, len, r, 1e-9);
  assert.deepEqual(replaced, [1, 2]);
  assert.ok(orthoError(V, len, r) < 1e-14, `${orthoError(V, len, r)}`);
  // r = len: the last column is forced; still orthonormal.
  const W = new Float64Array(9);
  orthonormalizeColumns(W, 3, 3, 1e-9);
  assert.ok(orthoError(W, 3, 3) < 1e-15);
});

test('error feedback with powersgd: what was sent tracks what was given, the residual stays bounded', () => {
  const rows = 12,
    cols = 20,
    r = 2,
    n = rows * cols,
    rounds = 60;
  const rng = new Rng(60);
  const G = rng.uniformArray(n); // a persistent full-rank direction that rank 2 cannot send in one round
  const codec = powerSgdCodec(rows, cols, r);
  codec.start(ctx(0)); // ErrorFeedback calls encode without a ctx
  const ef = new ErrorFeedback(codec, n);
  const plain = powerSgdCodec(rows, cols, r);
  plain.start(ctx(0));
  const given = new Float64Array(n);
  const sent = new Float64Array(n);
  const sentPlain = new Float64Array(n);
  const slack = new Float64Array(n);
  const residualNorms: number[] = [];
  const gNorm = frob(G);
  for (let t = 0; t < rounds; t++) {
    const noise = rng.uniformArray(n, -0.5, 0.5);
    const delta = G.map((g, i) => g + noise[i]);
    const before = Float64Array.from(ef.residual);
    const y = codec.decode(ef.encode(delta), n);
    const yPlain = plain.decode(plain.encode(delta), n);
    for (let i = 0; i < n; i++) {
      given[i] += delta[i];
      sent[i] += y[i];
      sentPlain[i] += yPlain[i];
      // f32 roundings of d = delta + residual and of residual = d − sent.
      slack[i] += 2 ** -24 * (Math.abs(delta[i] + before[i]) + Math.abs(ef.residual[i])) * 1.001;
    }
    residualNorms.push(frob(ef.residual));
  }
  for (let i = 0; i < n; i++) {
    assert.ok(Math.abs(sent[i] + ef.residual[i] - given[i]) <= slack[i], `element ${i}`);
  }
  const gapEf = diffNorm(sent, given);
  const gapPlain = diffNorm(sentPlain, given);
  // Without feedback the unsent part of G piles up every round; with it the gap is the residual,
  // which levels off (at ~3.5‖G‖ here: rank 2 of 12 directions per round) instead of growing.
  const firstHalf = Math.max(...residualNorms.slice(0, rounds / 2));
  const secondHalf = Math.max(...residualNorms.slice(rounds / 2));
  assert.ok(secondHalf <= 6 * gNorm, `residual reached ${secondHalf}, ‖G‖ = ${gNorm}`);
  assert.ok(secondHalf <= 1.25 * firstHalf, `residual still growing: ${firstHalf} then ${secondHalf}`);
  assert.ok(gapEf <= 0.15 * gapPlain, `gap with feedback ${gapEf} vs without ${gapPlain}`);
  assert.ok(gapPlain >= 0.5 * rounds * gNorm * 0.5, `without feedback the gap grows with the rounds: ${gapPlain}`);
});
