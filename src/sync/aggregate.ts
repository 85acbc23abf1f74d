// How the coordinator combines a round's decoded updates into one pseudo-gradient (train.aggregator),
// and the per-update checks it reports. Pure functions over decoded Float32Arrays, so they work the
// same behind every codec (dense, quantized, sparse). Guarantees per aggregator: docs/AGGREGATION.md.

import type { Aggregator } from '../schema/aggregator';

export { parseAggregator, aggregatorName, type Aggregator } from '../schema/aggregator';

/** L2 norm, accumulated in f64. */
export function l2norm(x: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return Math.sqrt(s);
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/**
 * The lower median of the norms (the ⌊(n−1)/2⌋-th smallest): with n = 2 it is the smaller norm, so one
 * faulty donor of two cannot raise the clipping threshold; for odd n it is the median.
 */
export function lowerMedian(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[(s.length - 1) >> 1];
}

/** Plain mean, summed in f64 in donor order: exactly what CoordinatorSync.commit always computed. */
export function meanOf(updates: readonly Float32Array[]): Float32Array {
  const n = updates[0].length;
  const acc = new Float64Array(n);
  for (const d of updates) for (let i = 0; i < n; i++) acc[i] += d[i];
  const g = new Float32Array(n);
  for (let i = 0; i < n; i++) g[i] = acc[i] / updates.length;
  return g;
}

/** Each update scaled to norm ≤ τ · (lower median norm), then averaged. */
export function clippedMeanOf(
  updates: readonly Float32Array[],
  tau: number,
  norms = updates.map(l2norm),
): Float32Array {
  const limit = tau * lowerMedian(norms);
  const n = updates[0].length;
  const acc = new Float64Array(n);
  updates.forEach((d, j) => {
    const scale = norms[j] > limit ? limit / norms[j] : 1;
    for (let i = 0; i < n; i++) acc[i] += scale * d[i];
  });
  const g = new Float32Array(n);
  for (let i = 0; i < n; i++) g[i] = acc[i] / updates.length;
  return g;
}

/**
 * Coordinate-wise: per coordinate, the n values sorted, `trim` dropped at each end and the rest averaged;
 * `median` takes the middle one (the mean of the middle two for even n).
 */
function coordinateWise(updates: readonly Float32Array[], mode: { trim: number } | 'median'): Float32Array {
  const k = updates.length;
  const n = updates[0].length;
  const v = new Float64Array(k);
  const g = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    // Insertion sort: k is a round's donor count, small.
    for (let j = 0; j < k; j++) {
      const x = updates[j][i];
      let p = j;
      while (p > 0 && v[p - 1] > x) {
        v[p] = v[p - 1];
        p--;
      }
      v[p] = x;
    }
    if (mode === 'median') {
      g[i] = k % 2 === 1 ? v[k >> 1] : (v[k / 2 - 1] + v[k / 2]) / 2;
    } else {
      let s = 0;
      for (let j = mode.trim; j < k - mode.trim; j++) s += v[j];
      g[i] = s / (k - 2 * mode.trim);
    }
  }
  return g;
}

export function trimmedMeanOf(updates: readonly Float32Array[], fraction: number): Float32Array {
  return coordinateWise(updates, { trim: Math.floor(fraction * updates.length) });
}

export function medianOf(updates: readonly Float32Array[]): Float32Array {
  return coordinateWise(updates, 'median');
}

/** One update's checks, in the order the updates were given. */
export interface UpdateCheck {
  /** Its L2 norm. */
  norm: number;
  /** norm / the round's (lower) median norm (1 when both are 0, Infinity when only the median is). */
  normRatio: number;
  /** Cosine with the aggregate (0 when either is zero). */
  cosine: number;
  /** Whether clipped-mean scaled it down. */
  clipped: boolean;
}

export interface Aggregate {
  g: Float32Array;
  checks: UpdateCheck[];
}

/** The round's pseudo-gradient under `agg`, and each update's checks against it. */
export function aggregate(updates: readonly Float32Array[], agg: Aggregator): Aggregate {
  if (updates.length === 0) throw new RangeError('aggregate: no updates');
  const n = updates[0].length;
  for (const u of updates) {
    if (u.length !== n) throw new RangeError(`aggregate: updates of ${u.length} and ${n} values`);
  }
  const norms = updates.map(l2norm);
  const med = lowerMedian(norms);
  let g: Float32Array;
  switch (agg.kind) {
    case 'mean':
      g = meanOf(updates);
      break;
    case 'clipped-mean':
      g = clippedMeanOf(updates, agg.tau, norms);
      break;
    case 'trimmed-mean':
      g = trimmedMeanOf(updates, agg.fraction);
      break;
    case 'median':
      g = medianOf(updates);
      break;
  }
  const gNorm = l2norm(g);
  const limit = agg.kind === 'clipped-mean' ? agg.tau * med : Infinity;
  const checks = updates.map((u, j) => ({
    norm: norms[j],
    normRatio: med > 0 ? norms[j] / med : norms[j] > 0 ? Infinity : 1,
    cosine: norms[j] > 0 && gNorm > 0 ? dot(u, g) / (norms[j] * gNorm) : 0,
    clipped: norms[j] > limit,
  }));
  return { g, checks };
}
