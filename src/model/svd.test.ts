// SVD checks that do not trust the SVD: matrices built with a known spectrum (random orthonormal
// factors), invariants of the spectrum computed from A directly (‖A‖_F² = Σσ², ‖AᵀA‖_F² = Σσ⁴),
// orthogonality, reconstruction, and σ_max from an independent method (power iteration).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../util/rng';
import { svd, truncatedSvd, spectralNorm } from './svd';
import { randomMatrix, withSpectrum } from './svd.test-helper';

function reconstruct(
  d: { U: Float64Array; S: Float64Array; V: Float64Array; m: number; n: number; k: number },
  r = d.k,
): Float64Array {
  const out = new Float64Array(d.m * d.n);
  for (let i = 0; i < d.m; i++)
    for (let j = 0; j < d.n; j++) {
      let x = 0;
      for (let c = 0; c < r; c++) x += d.U[i * d.k + c] * d.S[c] * d.V[j * d.k + c];
      out[i * d.n + j] = x;
    }
  return out;
}

const sq = (a: ArrayLike<number>) => Array.from(a).reduce((s, x) => s + x * x, 0);

/** max |QᵀQ − I| over a [rows, k] matrix's columns. */
function orthoError(Q: Float64Array, rows: number, k: number): number {
  let worst = 0;
  for (let a = 0; a < k; a++)
    for (let b = 0; b < k; b++) {
      let d = 0;
      for (let i = 0; i < rows; i++) d += Q[i * k + a] * Q[i * k + b];
      worst = Math.max(worst, Math.abs(d - (a === b ? 1 : 0)));
    }
  return worst;
}

// Double precision: Jacobi is backward stable, so errors are a few hundred ulps of ‖A‖ at these
// sizes (≤ 29): 1e-12 relative bounds leave a wide margin; a wrong rotation misses by O(1).
const TOL = 1e-12;

test('random matrices of odd shapes: orthonormal U and V, descending σ, exact reconstruction, spectral invariants', () => {
  const rng = new Rng(301);
  for (const [m, n] of [
    [1, 1],
    [1, 7],
    [7, 1],
    [2, 2],
    [5, 3],
    [3, 5],
    [17, 11],
    [13, 29],
    [31, 30],
  ]) {
    const A = randomMatrix(m, n, rng);
    const d = svd(A, m, n);
    const k = Math.min(m, n);
    assert.equal(d.k, k);
    assert.equal(d.U.length, m * k);
    assert.equal(d.V.length, n * k);
    assert.ok(orthoError(d.U, m, k) <= TOL, `${m}×${n}: UᵀU ≠ I by ${orthoError(d.U, m, k)}`);
    assert.ok(orthoError(d.V, n, k) <= TOL, `${m}×${n}: VᵀV ≠ I by ${orthoError(d.V, n, k)}`);
    for (let c = 0; c < k; c++)
      assert.ok(d.S[c] >= 0 && (c === 0 || d.S[c] <= d.S[c - 1]), `${m}×${n}: σ not descending at ${c}`);
    const normA = Math.sqrt(sq(A));
    const R = reconstruct(d);
    const err = Math.sqrt(sq(A.map((x, i) => x - R[i])));
    assert.ok(err <= TOL * normA, `${m}×${n}: ‖A − USVᵀ‖ = ${err}`);
    // Invariants computed from A alone: Σσ² = ‖A‖_F², Σσ⁴ = ‖AᵀA‖_F².
    assert.ok(Math.abs(sq(d.S) - sq(A)) <= TOL * sq(A), `${m}×${n}: Σσ² vs ‖A‖²`);
    const AtA = new Float64Array(n * n);
    for (let a = 0; a < n; a++)
      for (let b = 0; b < n; b++) {
        let x = 0;
        for (let i = 0; i < m; i++) x += A[i * n + a] * A[i * n + b];
        AtA[a * n + b] = x;
      }
    const s4 = Array.from(d.S).reduce((s, x) => s + x ** 4, 0);
    assert.ok(Math.abs(s4 - sq(AtA)) <= TOL * sq(AtA), `${m}×${n}: Σσ⁴ ${s4} vs ‖AᵀA‖² ${sq(AtA)}`);
  }
});

test('known spectrum: σ recovered, and the rank-r truncation error equals the best possible Σ_{i>r} s_i²', () => {
  const rng = new Rng(302);
  for (const [m, n] of [
    [9, 6],
    [6, 9],
    [24, 8],
    [8, 32],
  ]) {
    const k = Math.min(m, n);
    // Distinct, spread values including a tiny one (relative accuracy) — descending.
    const s = Array.from({ length: k }, (_, i) => 3 * 0.6 ** i);
    s[k - 1] = 1e-9;
    const A = withSpectrum(m, n, s, rng);
    const d = svd(A, m, n);
    for (let c = 0; c < k; c++)
      assert.ok(Math.abs(d.S[c] - s[c]) <= TOL * s[0], `${m}×${n}: σ${c} ${d.S[c]} vs ${s[c]}`);
    for (let r = 1; r <= k; r++) {
      const t = truncatedSvd(A, m, n, r);
      assert.equal(t.k, r);
      assert.equal(t.U.length, m * r);
      const R = reconstruct(t);
      const err2 = sq(A.map((x, i) => x - R[i]));
      const best = s.slice(r).reduce((acc, x) => acc + x * x, 0);
      // Eckart–Young: no rank-r matrix does better than Σ_{i>r} s_i²; ours reaches it (to rounding).
      assert.ok(Math.abs(err2 - best) <= TOL * s[0] ** 2, `${m}×${n} r=${r}: error² ${err2} vs best ${best}`);
    }
  }
});

test('rank-deficient and zero matrices still give orthonormal U and V', () => {
  const rng = new Rng(303);
  // Rank 1, and an exactly zero matrix (every σ = 0; U and V completed to orthonormal sets).
  const x = randomMatrix(6, 1, rng);
  const y = randomMatrix(1, 4, rng);
  const rank1 = new Float64Array(24).map((_, i) => x[Math.floor(i / 4)] * y[i % 4]);
  for (const [A, m, n] of [
    [rank1, 6, 4],
    [new Float64Array(15), 3, 5],
    [new Float64Array(15), 5, 3],
  ] as const) {
    const d = svd(A, m, n);
    const k = Math.min(m, n);
    assert.ok(orthoError(d.U, m, k) <= TOL, `U of ${m}×${n}: ${orthoError(d.U, m, k)}`);
    assert.ok(orthoError(d.V, n, k) <= TOL, `V of ${m}×${n}`);
    const R = reconstruct(d);
    assert.ok(sq(A.map((v, i) => v - R[i])) <= TOL * TOL * Math.max(1, sq(A)));
    for (let c = 1; c < k; c++)
      assert.ok(d.S[c] <= TOL * Math.max(d.S[0], 1), `σ${c} of a rank ≤ 1 matrix is ${d.S[c]}`);
  }
});

test('spectralNorm (power iteration) agrees with the SVD’s σ_max', () => {
  const rng = new Rng(304);
  for (const [m, n] of [
    [1, 1],
    [1, 9],
    [9, 1],
    [17, 11],
    [13, 29],
    [48, 12],
  ]) {
    const A = randomMatrix(m, n, rng);
    const p = spectralNorm(A, m, n);
    const s = svd(A, m, n).S[0];
    // Stops when σ² changes by < 1e-13 relative per step; with the spectral gaps of these random
    // matrices that leaves the estimate ~1e-13 below σ_max (measured ≤ 2.5e-13, up to 256 × 64);
    // the Rayleigh quotient never exceeds σ_max beyond rounding.
    assert.ok(Math.abs(p - s) <= 1e-11 * s && p <= s * (1 + 1e-14), `${m}×${n}: power ${p} vs svd ${s}`);
  }
  assert.equal(spectralNorm(new Float64Array(6), 2, 3), 0);
});

test('bad shapes and values are rejected', () => {
  assert.throws(() => svd(new Float64Array(5), 2, 3), /expected 6 entries for a 2 × 3 matrix, got 5/);
  assert.throws(() => svd(new Float64Array(0), 0, 3), /positive integers, got 0 × 3/);
  assert.throws(() => svd(Float64Array.from([1, NaN]), 1, 2), /entry 1 is NaN/);
  assert.throws(() => truncatedSvd(new Float64Array(6), 2, 3, 3), /rank r must be an integer in \[1, 2\]/);
  assert.throws(() => truncatedSvd(new Float64Array(6), 2, 3, 0), /rank r must be an integer in \[1, 2\]/);
});
