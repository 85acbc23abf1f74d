// Counter-based random numbers for codecs: Philox4x32-10 (Salmon et al., "Parallel random numbers:
// as easy as 1, 2, 3", SC 2011), stateless, so element i of any stream can be drawn on its own by any
// party (donor, coordinator, a GPU invocation) and comes out the same bit for bit. Everything is u32
// arithmetic a WGSL shader has: the 32×32→64 products are split into 16-bit halves (mulhi32), the
// low word is a wrapping multiply (Math.imul here, `*` on u32 in WGSL).
//
// Element i of (ctx, purpose) is word (i mod 4) of Philox4x32-10 with
//   counter = (floor(i / 4), ctx.round, ctx.stream, purpose),  key = (ctx.seed, 0)
// so one Philox block feeds four consecutive elements. `purpose` keeps the draws of different uses
// (stochastic rounding, random-k's permutation) independent under the same context.
import type { CodecContext } from './codec';

export const PHILOX_M0 = 0xd2511f53;
export const PHILOX_M1 = 0xcd9e8d57;
/** Key increments (golden ratio and sqrt(3) − 1, as 32-bit fractions). */
export const PHILOX_W0 = 0x9e3779b9;
export const PHILOX_W1 = 0xbb67ae85;

/** Draws for stochastic rounding (quant/quant.ts). */
export const PURPOSE_STOCHASTIC_ROUNDING = 1;
/** Round keys of random-k's index permutation (randomk.ts). */
export const PURPOSE_RANDOM_K = 2;

/**
 * High 32 bits of the 64-bit product a·b of two u32s, from 16-bit halves: every partial product and
 * sum stays below 2^32, so the same lines compute it in WGSL u32 arithmetic.
 */
export function mulhi32(a: number, b: number): number {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const lo = a0 * b0;
  const m1 = a1 * b0;
  const m2 = a0 * b1;
  const carry = ((lo >>> 16) + (m1 & 0xffff) + (m2 & 0xffff)) >>> 16;
  return (a1 * b1 + (m1 >>> 16) + (m2 >>> 16) + carry) >>> 0;
}

/**
 * Philox4x32 with `rounds` rounds (10 is the standard, Crush-resistant choice) on counter c0..c3 and
 * key k0, k1; writes the four output words to `out`. Round: (c0, c1, c2, c3) ←
 * (hi(M1·c2) ⊕ c1 ⊕ k0, lo(M1·c2), hi(M0·c0) ⊕ c3 ⊕ k1, lo(M0·c0)); the key grows by (W0, W1)
 * between rounds.
 */
export function philox4x32(
  c0: number,
  c1: number,
  c2: number,
  c3: number,
  k0: number,
  k1: number,
  out: Uint32Array = new Uint32Array(4),
  rounds = 10,
): Uint32Array {
  c0 >>>= 0;
  c1 >>>= 0;
  c2 >>>= 0;
  c3 >>>= 0;
  k0 >>>= 0;
  k1 >>>= 0;
  for (let r = 0; r < rounds; r++) {
    if (r > 0) {
      k0 = (k0 + PHILOX_W0) >>> 0;
      k1 = (k1 + PHILOX_W1) >>> 0;
    }
    const hi0 = mulhi32(PHILOX_M0, c0);
    const lo0 = Math.imul(PHILOX_M0, c0) >>> 0;
    const hi1 = mulhi32(PHILOX_M1, c2);
    const lo1 = Math.imul(PHILOX_M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
  return out;
}

const U32_MAX = 0xffffffff;

function isU32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= U32_MAX;
}

/**
 * Checks a codec context: seed, round and stream must each be an integer in [0, 2^32). With
 * `required`, a missing context is an error too. Throws a RangeError naming `who` and the bad field.
 */
export function checkContext(ctx: CodecContext | undefined, who: string, required: boolean): void {
  if (ctx === undefined || ctx === null) {
    if (required)
      throw new RangeError(`${who}: a codec context {seed, round, stream} is required (random choices), got ${ctx}`);
    return;
  }
  if (typeof ctx !== 'object') throw new RangeError(`${who}: codec context must be an object, got ${typeof ctx}`);
  for (const f of ['seed', 'round', 'stream'] as const) {
    const v: unknown = ctx[f];
    if (!isU32(v)) throw new RangeError(`${who}: ctx.${f} must be an integer in [0, 4294967295], got ${String(v)}`);
  }
}

const one = new Uint32Array(4);

/** The u32 drawn for element i (an integer in [0, 2^32)) of (ctx, purpose). */
export function randomU32(ctx: CodecContext, purpose: number, i: number): number {
  philox4x32(i >>> 2, ctx.round, ctx.stream, purpose, ctx.seed, 0, one);
  return one[i & 3];
}

/** out[j] = randomU32(ctx, purpose, start + j), one Philox block per four elements. */
export function fillRandomU32(ctx: CodecContext, purpose: number, start: number, out: Uint32Array): Uint32Array {
  const blk = new Uint32Array(4);
  let cached = -1;
  for (let j = 0; j < out.length; j++) {
    const i = start + j;
    const b = Math.floor(i / 4);
    if (b !== cached) {
      philox4x32(b, ctx.round, ctx.stream, purpose, ctx.seed, 0, blk);
      cached = b;
    }
    out[j] = blk[i & 3];
  }
  return out;
}

/** The top 24 bits of u as a float32 in [0, 1): (u >> 8) · 2^-24, exact in f32 (and in WGSL). */
export function u32ToUnitF32(u: number): number {
  return (u >>> 8) * 2 ** -24;
}

/** Uniform float32 in [0, 1) for element i of (ctx, purpose). */
export function randomUnitF32(ctx: CodecContext, purpose: number, i: number): number {
  return u32ToUnitF32(randomU32(ctx, purpose, i));
}

/**
 * "lowbias32" integer hash (C. Wellons, hash-prospector): a bijection on u32 with low bias, used as
 * the round function of random-k's Feistel permutation. u32 ops only.
 */
export function lowbias32(x: number): number {
  x >>>= 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}
