// TEST-ONLY helpers: random matrices, including ones with a chosen singular spectrum.
import type { Rng } from '../util/rng';

export function randomMatrix(m: number, n: number, rng: Rng): Float64Array {
  return Float64Array.from({ length: m * n }, () => rng.normal());
}

/** m × k with orthonormal columns: modified Gram–Schmidt, twice, on Gaussian columns (k ≤ m). */
export function randomOrthonormal(m: number, k: number, rng: Rng): Float64Array {
  const Q = randomMatrix(m, k, rng);
  for (let j = 0; j < k; j++) {
    for (let pass = 0; pass < 2; pass++) {
      for (let p = 0; p < j; p++) {
        let d = 0;
        for (let i = 0; i < m; i++) d += Q[i * k + p] * Q[i * k + j];
        for (let i = 0; i < m; i++) Q[i * k + j] -= d * Q[i * k + p];
      }
    }
    let nrm = 0;
    for (let i = 0; i < m; i++) nrm += Q[i * k + j] ** 2;
    nrm = Math.sqrt(nrm);
    for (let i = 0; i < m; i++) Q[i * k + j] /= nrm;
  }
  return Q;
}

/** A = Q1·diag(s)·Q2ᵀ, [m, n], with s given (length min(m, n)). */
export function withSpectrum(m: number, n: number, s: number[], rng: Rng): Float64Array {
  const k = s.length;
  const Q1 = randomOrthonormal(m, k, rng);
  const Q2 = randomOrthonormal(n, k, rng);
  const A = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let x = 0;
      for (let c = 0; c < k; c++) x += Q1[i * k + c] * s[c] * Q2[j * k + c];
      A[i * n + j] = x;
    }
  return A;
}
