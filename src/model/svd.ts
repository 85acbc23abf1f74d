// Singular value decomposition of a small dense matrix on the CPU, in float64, by one-sided Jacobi
// (Hestenes): rotate pairs of columns of A (the wider side transposed away) until every pair is
// orthogonal to working precision; the column norms are then the singular values. It is simple,
// needs no bidiagonalisation, and computes even small singular values to high relative accuracy.
// Cost: O(sweeps · k² · max(m, n)) with k = min(m, n) and typically 6–12 sweeps, so it is meant for
// weight matrices of a few hundred rows and columns (Pufferfish / Cuttlefish conversions happen once
// per job, on the coordinator). `spectralNorm` (power iteration) is the cheap way to get σ_max alone.
import { Rng } from '../util/rng';

export interface Svd {
  /** Left singular vectors, [m, k] row-major (column j is u_j). */
  U: Float64Array;
  /** Singular values, descending, length k. */
  S: Float64Array;
  /** Right singular vectors, [n, k] row-major (column j is v_j), so A ≈ U·diag(S)·Vᵀ. */
  V: Float64Array;
  m: number;
  n: number;
  /** Number of singular triplets kept (min(m, n), or r for truncatedSvd). */
  k: number;
}

type Matrix = ArrayLike<number>;

function checkShape(A: Matrix, m: number, n: number): void {
  if (!Number.isInteger(m) || m < 1 || !Number.isInteger(n) || n < 1) {
    throw new RangeError(`matrix shape must be positive integers, got ${m} × ${n}`);
  }
  if (A.length !== m * n) throw new RangeError(`expected ${m * n} entries for a ${m} × ${n} matrix, got ${A.length}`);
  for (let i = 0; i < A.length; i++) {
    if (!Number.isFinite(A[i])) throw new RangeError(`matrix entry ${i} is ${A[i]}; the SVD needs finite values`);
  }
}

const MAX_SWEEPS = 80;
const EPS = 2 ** -52;

/**
 * Thin SVD of A [m, n] (row-major): k = min(m, n) triplets with S descending, U and V with
 * orthonormal columns (completed to an orthonormal set where A is rank deficient).
 */
export function svd(A: Matrix, m: number, n: number): Svd {
  checkShape(A, m, n);
  if (m < n) {
    // A = U S Vᵀ  ⇔  Aᵀ = V S Uᵀ
    const At = new Float64Array(m * n);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) At[j * m + i] = A[i * n + j];
    const t = jacobi(At, n, m);
    return { U: t.V, S: t.S, V: t.U, m, n, k: t.k };
  }
  return jacobi(A, m, n);
}

/** Jacobi on A [m, n] with m ≥ n. */
function jacobi(A: Matrix, m: number, n: number): Svd {
  // Columns as contiguous rows: g[j] = column j of the working matrix, w[j] = column j of V.
  const g: Float64Array[] = [];
  const w: Float64Array[] = [];
  for (let j = 0; j < n; j++) {
    const col = new Float64Array(m);
    for (let i = 0; i < m; i++) col[i] = A[i * n + j];
    g.push(col);
    const e = new Float64Array(n);
    e[j] = 1;
    w.push(e);
  }
  const tol = EPS * Math.max(m, 4);
  for (let sweep = 0; sweep < MAX_SWEEPS; sweep++) {
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const gp = g[p],
          gq = g[q];
        let alpha = 0,
          beta = 0,
          gamma = 0;
        for (let i = 0; i < m; i++) {
          alpha += gp[i] * gp[i];
          beta += gq[i] * gq[i];
          gamma += gp[i] * gq[i];
        }
        if (gamma === 0 || Math.abs(gamma) <= tol * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        // Rotation that zeroes the pair's inner product: t = tan θ, the smaller root of
        // t² + 2ζt − 1 = 0 with ζ = (β − α)/(2γ).
        const zeta = (beta - alpha) / (2 * gamma);
        const t = (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        for (let i = 0; i < m; i++) {
          const a = gp[i],
            b = gq[i];
          gp[i] = c * a - s * b;
          gq[i] = s * a + c * b;
        }
        const wp = w[p],
          wq = w[q];
        for (let i = 0; i < n; i++) {
          const a = wp[i],
            b = wq[i];
          wp[i] = c * a - s * b;
          wq[i] = s * a + c * b;
        }
      }
    }
    if (!rotated) break;
  }
  const norms = g.map((col) => Math.sqrt(col.reduce((acc, x) => acc + x * x, 0)));
  const order = norms.map((_, j) => j).sort((a, b) => norms[b] - norms[a]);
  const k = n;
  const U = new Float64Array(m * k);
  const S = new Float64Array(k);
  const V = new Float64Array(n * k);
  const zeroCols: number[] = [];
  order.forEach((j, c) => {
    S[c] = norms[j];
    for (let i = 0; i < n; i++) V[i * k + c] = w[j][i];
    if (norms[j] > 0) for (let i = 0; i < m; i++) U[i * k + c] = g[j][i] / norms[j];
    else zeroCols.push(c);
  });
  // Exactly zero singular values leave u_c undetermined: complete with unit vectors orthogonalised
  // (twice, for stability) against the columns already there.
  for (const c of zeroCols) {
    for (let e = 0; e < m; e++) {
      const v = new Float64Array(m);
      v[e] = 1;
      for (let pass = 0; pass < 2; pass++) {
        for (let j = 0; j < k; j++) {
          if (j === c) continue; // zero columns not completed yet are zero vectors: no effect
          let d = 0;
          for (let i = 0; i < m; i++) d += U[i * k + j] * v[i];
          for (let i = 0; i < m; i++) v[i] -= d * U[i * k + j];
        }
      }
      const nv = Math.sqrt(v.reduce((acc, x) => acc + x * x, 0));
      if (nv > 0.5) {
        for (let i = 0; i < m; i++) U[i * k + c] = v[i] / nv;
        break;
      }
    }
  }
  return { U, S, V, m, n, k };
}

/** The first r singular triplets of A [m, n] (1 ≤ r ≤ min(m, n)). */
export function truncatedSvd(A: Matrix, m: number, n: number, r: number): Svd {
  checkShape(A, m, n);
  const k = Math.min(m, n);
  if (!Number.isInteger(r) || r < 1 || r > k)
    throw new RangeError(`rank r must be an integer in [1, ${k}] (min of ${m} × ${n}), got ${r}`);
  const full = svd(A, m, n);
  if (r === k) return full;
  const U = new Float64Array(m * r);
  const V = new Float64Array(n * r);
  for (let i = 0; i < m; i++) for (let j = 0; j < r; j++) U[i * r + j] = full.U[i * k + j];
  for (let i = 0; i < n; i++) for (let j = 0; j < r; j++) V[i * r + j] = full.V[i * k + j];
  return { U, S: full.S.slice(0, r), V, m, n, k: r };
}

/**
 * σ_max(A) by power iteration on AᵀA from a seeded random start, stopping when the Rayleigh
 * quotient changes by less than `tol` (relative) or after `maxIters`. The estimate only rises toward
 * σ_max; its relative error after k steps is ~ (σ₂/σ₁)^(2k).
 */
export function spectralNorm(
  A: Matrix,
  m: number,
  n: number,
  opts: { tol?: number; maxIters?: number; seed?: number } = {},
): number {
  checkShape(A, m, n);
  const tol = opts.tol ?? 1e-13;
  const maxIters = opts.maxIters ?? 10000;
  const rng = new Rng(opts.seed ?? 12345);
  let x = new Float64Array(n);
  for (let j = 0; j < n; j++) x[j] = rng.normal();
  const y = new Float64Array(m);
  let prev = 0;
  for (let it = 0; it < maxIters; it++) {
    let nx = 0;
    for (let j = 0; j < n; j++) nx += x[j] * x[j];
    nx = Math.sqrt(nx);
    if (nx === 0) return 0;
    for (let j = 0; j < n; j++) x[j] /= nx;
    // y = A x; σ² estimate = ‖y‖²; x ← Aᵀ y
    let ny = 0;
    for (let i = 0; i < m; i++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += A[i * n + j] * x[j];
      y[i] = s;
      ny += s * s;
    }
    const next = new Float64Array(n);
    for (let i = 0; i < m; i++) {
      const yi = y[i];
      for (let j = 0; j < n; j++) next[j] += A[i * n + j] * yi;
    }
    x = next;
    if (Math.abs(ny - prev) <= tol * ny) return Math.sqrt(ny);
    prev = ny;
  }
  return Math.sqrt(prev);
}
