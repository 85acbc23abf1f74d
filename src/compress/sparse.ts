// What the sparsifiers (topk.ts, randomk.ts) share: how many values they keep, and the SparseCodec
// shape that lets compose.ts chain them (each sparsifier hands its kept values to an inner codec).
import type { Codec } from './codec';

/** A codec that keeps k of n values and encodes those k with an inner value codec. */
export interface SparseCodec extends Codec {
  /** Fraction of the values kept, in (0, 1]. */
  readonly fraction: number;
  /** The codec of the k kept values. */
  readonly values: Codec;
  /** k for n values: keepCount(fraction, n). */
  keep(n: number): number;
  /** The same sparsifier with another inner codec for its kept values. */
  withValues(values: Codec): SparseCodec;
}

export function checkFraction(fraction: number, who: string): void {
  if (typeof fraction !== 'number' || !(fraction > 0 && fraction <= 1)) {
    throw new RangeError(`${who}: fraction must be a number in (0, 1], got ${fraction}`);
  }
}

/**
 * k = max(1, ceil(fraction·n)) for n >= 1 (computed in f64 as Math.ceil(fraction * n), so every party
 * using this function agrees; at most n), and 0 for n = 0.
 */
export function keepCount(fraction: number, n: number): number {
  if (n === 0) return 0;
  return Math.min(n, Math.max(1, Math.ceil(fraction * n)));
}
