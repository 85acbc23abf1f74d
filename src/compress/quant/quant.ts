// Blockwise symmetric quantization to 8, 4 or 2 bits (`blockQuantCodec({bits, block, rounding})`).
//
// Levels: with L = 2^(bits−1) − 1 (127, 7, 1), every value becomes an integer q in [−L, L] times its
// block's step s = f32(maxabs · f32(1/L)), maxabs the block's largest |x|. For 2 bits that is the
// ternary grid {−1, 0, 1}·maxabs (TernGrad's), not {−1, −1/3, 1/3, 1}: one formula and one kernel for
// every width (L a uniform), zero stays exactly zero, and 8 bits with block 256 gives byte for byte
// the payload of int8.ts. The 4-level grid would halve the worst rounding error of 2 bits, but error
// feedback makes up for rounding error over rounds, and a code for zero lets sparse or quiet blocks
// cost nothing in error. The code −2^(bits−1) (−128, −8, −2) is never produced and is refused on decode.
//
// Rounding: t = f32(x / s); nearest: q = round half away from zero (as int8.ts); stochastic:
// q = floor(t) + (u < t − floor(t)), u the 24-bit uniform of element i from the PRNG (prng.ts,
// purpose PURPOSE_STOCHASTIC_ROUNDING; i the element's index in this encode's input), compared as
// f32 (exact), then q is clamped to [−L, L]. Stochastic rounding is unbiased up to 2^-24 of a step
// (P(up) = ceil(frac·2^24)/2^24).
//
// Layout: ceil(n/block) f32 steps (little-endian), then the codes as bits-wide two's complement fields
// packed into little-endian u32 words, element i at bits [(i·bits) mod 32, +bits) of word
// floor(i·bits/32) (low bits first; no field straddles a word); unused high bits of the last word 0.
// Size: 4·ceil(n/block) + 4·ceil(n·bits/32) bytes, exact.
// Error per element: nearest <= s/2, stochastic < s (plus f32 rounding, < 2L·2^-24·s).
// Blocks with maxabs < 2^-100 have s = 0 and decode to zeros (GPUs may flush subnormal steps).
import type { Codec, CodecContext } from '../codec';
import { checkContext, fillRandomU32, PURPOSE_STOCHASTIC_ROUNDING } from '../prng';
import { checkCount } from '../plain/plain';

export type QuantBits = 2 | 4 | 8;
export type Rounding = 'nearest' | 'stochastic';

export interface BlockQuantOptions {
  bits: QuantBits;
  /** Values per f32 step; any positive integer (need not divide n or 32). */
  block: number;
  rounding: Rounding;
}

const TINY = 2 ** -100;

/** L = 2^(bits−1) − 1: codes lie in [−L, L]. */
export function quantLevels(bits: QuantBits): number {
  return 2 ** (bits - 1) - 1;
}

/** The f32 step of a block whose largest magnitude is maxabs: f32(maxabs · f32(1/L)), 0 below 2^-100. */
export function quantStep(maxabs: number, levels: number): number {
  return maxabs < TINY ? 0 : Math.fround(maxabs * Math.fround(1 / levels));
}

/** Nearest: round half away from zero of f32(x/step), clamped to ±levels (0 when step is 0). */
export function quantizeNearest(x: number, step: number, levels: number): number {
  if (!(step > 0)) return 0;
  const t = Math.fround(x / step);
  const a = Math.abs(t);
  let r = Math.floor(a);
  if (a - r >= 0.5) r += 1;
  return t < 0 ? -Math.min(r, levels) : Math.min(r, levels);
}

/**
 * Stochastic: floor(t) + 1 when u24 < (t − floor(t))·2^24, u24 the top 24 bits of the element's
 * random u32; clamped to ±levels.
 */
export function quantizeStochastic(x: number, step: number, levels: number, u: number): number {
  if (!(step > 0)) return 0;
  const t = Math.fround(x / step);
  const f = Math.floor(t);
  const frac = t - f; // exact in f32
  const q = u >>> 8 < frac * 16777216 ? f + 1 : f;
  return Math.max(-levels, Math.min(levels, q));
}

function checkOptions(o: BlockQuantOptions): void {
  if (o.bits !== 2 && o.bits !== 4 && o.bits !== 8) {
    throw new RangeError(`block quantization: bits must be 2, 4 or 8, got ${String(o.bits)}`);
  }
  if (!Number.isInteger(o.block) || o.block < 1 || o.block > 2 ** 31) {
    throw new RangeError(`block quantization: block must be an integer in [1, 2^31], got ${o.block}`);
  }
  if (o.rounding !== 'nearest' && o.rounding !== 'stochastic') {
    throw new RangeError(`block quantization: rounding must be 'nearest' or 'stochastic', got ${String(o.rounding)}`);
  }
}

export interface BlockQuantCodec extends Codec {
  readonly bits: QuantBits;
  readonly block: number;
  readonly rounding: Rounding;
  /** Number of f32 steps for n values. */
  blocks(n: number): number;
}

export function blockQuantCodec(options: BlockQuantOptions): BlockQuantCodec {
  checkOptions(options);
  const { bits, block, rounding } = options;
  const L = quantLevels(bits);
  const mask = (1 << bits) - 1;
  const perWord = 32 / bits;
  const name = `q${bits}-block${block}-${rounding}`;
  const blocks = (n: number) => Math.ceil(n / block);
  const size = (n: number) => {
    checkCount(n, `${name} codec`);
    return 4 * blocks(n) + 4 * Math.ceil(n / perWord);
  };

  return {
    name,
    fixedSize: true,
    bits,
    block,
    rounding,
    blocks,
    encodedBytes: size,

    encode(x: Float32Array, ctx?: CodecContext): Uint8Array {
      checkContext(ctx, `${name} encode`, rounding === 'stochastic');
      const n = x.length;
      const nb = blocks(n);
      const out = new Uint8Array(size(n));
      const dv = new DataView(out.buffer);
      const words = new Uint32Array(out.buffer, 4 * nb);
      const u = new Uint32Array(Math.min(block, n));
      for (let b = 0; b < nb; b++) {
        const lo = b * block;
        const hi = Math.min(n, lo + block);
        let maxabs = 0;
        for (let i = lo; i < hi; i++) {
          const v = x[i];
          if (!Number.isFinite(v))
            throw new RangeError(`${name} encode: element ${i} of ${n} is ${v}; only finite values can be encoded`);
          const a = Math.abs(v);
          if (a > maxabs) maxabs = a;
        }
        const step = quantStep(maxabs, L);
        dv.setFloat32(4 * b, step, true);
        if (step === 0) continue;
        if (rounding === 'stochastic')
          fillRandomU32(ctx as CodecContext, PURPOSE_STOCHASTIC_ROUNDING, lo, u.subarray(0, hi - lo));
        for (let i = lo; i < hi; i++) {
          const q =
            rounding === 'nearest' ? quantizeNearest(x[i], step, L) : quantizeStochastic(x[i], step, L, u[i - lo]);
          const w = Math.floor(i / perWord);
          words[w] |= (q & mask) << ((i % perWord) * bits);
        }
      }
      return out;
    },

    decode(bytes: Uint8Array, n: number, ctx?: CodecContext): Float32Array {
      checkContext(ctx, `${name} decode`, false);
      const expected = size(n);
      if (bytes.length !== expected)
        throw new RangeError(`${name} decode: expected ${expected} bytes for ${n} values, got ${bytes.length}`);
      const nb = blocks(n);
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const out = new Float32Array(n);
      const half = 1 << (bits - 1);
      for (let b = 0; b < nb; b++) {
        const step = dv.getFloat32(4 * b, true);
        if (!(Number.isFinite(step) && step >= 0)) {
          throw new RangeError(`${name} decode: block ${b} has step ${step}; steps must be finite and >= 0`);
        }
        const lo = b * block;
        const hi = Math.min(n, lo + block);
        for (let i = lo; i < hi; i++) {
          const word = dv.getUint32(4 * (nb + Math.floor(i / perWord)), true);
          const c = (word >>> ((i % perWord) * bits)) & mask;
          if (c === half)
            throw new RangeError(`${name} decode: value ${i} has code ${-half}; codes lie in [${-L}, ${L}]`);
          out[i] = Math.fround((c > half ? c - (1 << bits) : c) * step);
        }
      }
      const used = (n % perWord) * bits;
      if (used > 0) {
        const last = dv.getUint32(bytes.length - 4, true);
        if (last >>> used !== 0)
          throw new RangeError(
            `${name} decode: unused bits after value ${n - 1} must be 0, got word 0x${last.toString(16)}`,
          );
      }
      return out;
    },
  };
}
