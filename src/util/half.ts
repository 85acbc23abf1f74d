// f16 (IEEE binary16) conversions on the CPU, shared by the f16 codec (src/compress/plain/) and the
// GPU f16 storage kernels (src/gpu/kernels/half.ts, whose shader casts they reproduce bit for bit).
//
// Exact: f32 → f16 rounds to nearest, ties to even, on the f32 bits (the input is first rounded to
// f32, as a Float32Array would store it); f16 → f32 is exact for every pattern. Packed storage holds
// two values per u32 word (element i in word i>>1, low half first).

/** Largest finite f16. */
export const HALF_MAX = 65504;

/** u32 words holding n packed f16 values: ceil(n/2). */
export function halfWords(n: number): number {
  return Math.ceil(n / 2);
}

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

/** The bits of fround(x) as an f32. */
export function f32Bits(x: number): number {
  f32buf[0] = x;
  return u32buf[0];
}

/** The f32 with these bits. */
export function f32FromBits(b: number): number {
  u32buf[0] = b >>> 0;
  return f32buf[0];
}

/**
 * f16 bits of fround(x), round to nearest even, IEEE overflow: |x| >= 65520 → ±Inf. NaN → 0x7e00
 * with the sign of the NaN (quiet, payload dropped).
 */
export function f32ToHalfBits(x: number): number {
  return f32BitsToHalf(f32Bits(x), false);
}

/**
 * What the GPU cast (`f32_to_half`) computes: as f32ToHalfBits, but finite values past ±65504 and ±Inf
 * saturate to ±65504 (clamp to ±65504, then round). NaN stays NaN (0x7e00 with its sign).
 */
export function f32ToHalfBitsSaturate(x: number): number {
  return f32BitsToHalf(f32Bits(x), true);
}

/**
 * f16 bits from f32 bits (the shader's f32_bits_to_half, bit for bit, when `saturate`), keeping the sign
 * of a NaN, which a JS number cannot carry.
 */
export function f32BitsToHalf(b: number, saturate = true): number {
  const sign = (b >>> 16) & 0x8000;
  const a = b & 0x7fffffff;
  if (a > 0x7f800000) return sign | 0x7e00; // NaN
  if (a >= 0x477ff000) return sign | (saturate ? 0x7bff : 0x7c00); // rounds past 65504, or Inf
  const e = a >>> 23;
  if (e >= 113) {
    const m = a - 0x38000000; // rebias 127 → 15
    return sign | ((m + 0x0fff + ((m >>> 13) & 1)) >>> 13);
  }
  if (e < 102) return sign; // |x| < 2^-25 (2^-25 itself ties to the even neighbour, 0)
  const mant = (a & 0x7fffff) | 0x800000;
  const shift = 126 - e; // 14 … 24
  const q = mant >>> shift;
  const rem = mant & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return sign | (q + (rem > half || (rem === half && (q & 1) === 1) ? 1 : 0));
}

/** The value of the f16 with these bits (exact; NaN for NaN patterns). */
export function halfBitsToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 31) return m ? NaN : s * Infinity;
  if (e === 0) return s * m * 2 ** -24;
  return s * (1024 + m) * 2 ** (e - 25);
}

/** f32 bits with the value of the f16 bits `h` (the shader's half_bits_to_f32; NaN → quiet NaN, payload kept). */
export function halfBitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 31) return (sign | 0x7f800000 | (m << 13) | (m ? 0x400000 : 0)) >>> 0;
  if (e !== 0) return (sign | ((e + 112) << 23) | (m << 13)) >>> 0;
  if (m === 0) return sign >>> 0;
  const p = 31 - Math.clz32(m);
  return (sign | ((103 + p) << 23) | ((m << (23 - p)) & 0x7fffff)) >>> 0;
}

/** fround(x) rounded to f16 as the GPU cast stores it (saturating), back as a number. */
export function roundToHalf(x: number): number {
  return halfBitsToF32(f32ToHalfBitsSaturate(x));
}

/** values → packed words as `f32_to_half` writes them (saturating; odd n: last high half 0). */
export function packHalf(values: ArrayLike<number>): Uint32Array {
  const n = values.length;
  const out = new Uint32Array(halfWords(n));
  for (let i = 0; i < n; i++) out[i >> 1] |= f32ToHalfBitsSaturate(values[i]) << (16 * (i & 1));
  return out;
}

/** The first n values of packed words, as f32 (exact). */
export function unpackHalf(words: ArrayLike<number>, n: number): Float32Array {
  if (words.length < halfWords(n))
    throw new RangeError(`unpackHalf: ${n} values need ${halfWords(n)} words, got ${words.length}`);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = halfBitsToF32((words[i >> 1] >>> (16 * (i & 1))) & 0xffff);
  return out;
}
