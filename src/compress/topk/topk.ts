// Top-k sparsification: keep the k = max(1, ceil(fraction·n)) values of largest magnitude, ties broken
// by lower index, so the kept set is a function of x alone and any implementation (this one, a GPU
// kernel) picks the same one. Kept values go through an inner value codec (f32 by default; e.g. a
// 4-bit blockQuantCodec), dropped ones decode as 0.
//
// Selection without a sort (topkIndices): for finite f32, the bits of |x| (the f32 bits with the sign
// cleared) order like |x|, so the k-th largest magnitude T is found by a radix select on those 31 bits
// in three histogram passes: 2048 bins of bits 30..20 (the exponent and 3 mantissa bits), then
// 1024 bins of bits 19..10 and 1024 of bits 9..0 among the values that share the digits chosen so
// far. Walking each histogram from the top finds the bin where the count of larger values reaches k.
// Then one selection pass keeps every |x| > T and the first (k − #{|x| > T}) values with |x| = T in
// index order. On a GPU: three atomic-histogram passes, a one-workgroup scan of the bins, and a
// prefix-sum compaction (ties get a prefix count too).
//
// Layout (all little-endian u32 words, then the inner payload):
//   word 0: k;  word 1: mode | (w << 8), mode 0 = delta indices of w bits, 1 = bitmap (w = 0),
//     2 = Rice-coded gaps with parameter w (0..31);
//   indices, delta: gaps g_0 = i_0, g_j = i_j − i_{j−1} − 1, each in w = bitLength(max gap) bits,
//     field j at bits [j·w, j·w + w) of the stream (low bits of word 0 first; fields may straddle
//     words), 4·ceil(k·w/32) bytes;
//   indices, bitmap: bit i (bit i mod 32 of word floor(i/32)) set when element i is kept, 4·ceil(n/32)
//     bytes;
//   indices, Rice: one word m (the stream's length in words), then m words of bits, low bits of each
//     word first: per gap g, floor(g / 2^w) zero bits, a one bit, then the w low bits of g (low bit
//     first). Gaps of a sparse random set are near geometric, so this costs about log2(1/f) + 1.5 bits
//     per kept value where delta costs bitLength(largest gap); 4 + 4·m bytes;
//   the encoder picks delta when it is strictly smaller than the bitmap, else the bitmap, and Rice (with
//   its best w) only when it is strictly smaller than both;
//   values: the inner codec's payload for the k kept values, in index order.
// Unused bits (delta padding, bitmap bits past n) are 0. encodedBytes(n) is the maximum:
//   8 + min(4·ceil(n/32), 4·ceil(k·bitLength(n−k)/32)) + values.encodedBytes(k)
// since no gap exceeds n − k. decode checks the length the header implies (exact when the inner codec
// has a fixed size; otherwise the inner codec checks its own).
import type { Codec, CodecContext } from '../codec';
import { checkContext } from '../prng';
import { checkCount, checkFinite, f32Codec } from '../plain/plain';
import { checkFraction, keepCount, type SparseCodec } from '../sparse';
import { bitLength, readBits, writeBits } from '../bits';

export const TOPK_DELTA = 0;
export const TOPK_BITMAP = 1;
export const TOPK_RICE = 2;
const HEADER = 8;

export interface TopKOptions {
  fraction: number;
  /** Codec of the kept values (default f32). */
  values?: Codec;
}

/**
 * The k-th largest magnitude, as the bits of |x| (f32 bits with the sign cleared), by radix select
 * (see the file comment), with the number of values above it. Requires 1 <= k <= x.length and finite x.
 */
export function topkThreshold(x: Float32Array, k: number): { threshold: number; above: number } {
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const n = x.length;
  let prefix = 0;
  let above = 0;
  let need = k;
  for (const [shift, width] of [
    [20, 11],
    [10, 10],
    [0, 10],
  ]) {
    const hist = new Uint32Array(1 << width);
    const top = shift + width;
    const digit = (1 << width) - 1;
    for (let i = 0; i < n; i++) {
      const a = bits[i] & 0x7fffffff;
      if (a >>> top === prefix) hist[(a >>> shift) & digit]++;
    }
    let d = digit;
    while (hist[d] < need) {
      need -= hist[d];
      above += hist[d];
      d--;
    }
    prefix = (prefix << width) | d;
  }
  return { threshold: prefix, above };
}

/** Indices of the k largest |x|, ties to the lower index, in increasing order. */
export function topkIndices(x: Float32Array, k: number): Uint32Array {
  const n = x.length;
  if (!Number.isInteger(k) || k < 0 || k > n)
    throw new RangeError(`top-k: k must be an integer in [0, ${n}], got ${k}`);
  const idx = new Uint32Array(k);
  if (k === 0) return idx;
  const { threshold, above } = topkThreshold(x, k);
  const bits = new Uint32Array(x.buffer, x.byteOffset, n);
  let ties = k - above;
  let j = 0;
  for (let i = 0; i < n; i++) {
    const a = bits[i] & 0x7fffffff;
    if (a > threshold || (a === threshold && ties-- > 0)) idx[j++] = i;
  }
  if (j !== k) throw new Error(`top-k: selected ${j} of ${k} values (internal error)`);
  return idx;
}

/** Bytes of the index section for the given mode. */
function indexBytes(mode: number, w: number, k: number, n: number): number {
  return mode === TOPK_DELTA ? 4 * Math.ceil((k * w) / 32) : 4 * Math.ceil(n / 32);
}

/**
 * The top-k payload (layout in the file comment) of a given kept set: `idx`, the kept indices in
 * strictly increasing order (< n), and `kept`, their values (encoded by `values`). The codec's encode
 * is topkIndices followed by this; a GPU selection (src/compress/topk/topk.gpu.ts) calls it on the
 * (index, value) list it read back, so both produce the same bytes from the same kept set.
 */
export function topkPack(
  idx: Uint32Array,
  kept: Float32Array,
  n: number,
  values: Codec,
  ctx?: CodecContext,
): Uint8Array {
  const k = idx.length;
  if (kept.length !== k) throw new RangeError(`top-k pack: ${k} indices but ${kept.length} values`);
  let maxGap = 0;
  for (let j = 0; j < k; j++) {
    if (idx[j] >= n || (j > 0 && idx[j] <= idx[j - 1])) {
      throw new RangeError(
        `top-k pack: index ${j} is ${idx[j]}; indices must increase strictly and stay below n = ${n}`,
      );
    }
    const gap = j === 0 ? idx[0] : idx[j] - idx[j - 1] - 1;
    if (gap > maxGap) maxGap = gap;
  }
  const w = bitLength(maxGap);
  let mode = indexBytes(TOPK_DELTA, w, k, n) < indexBytes(TOPK_BITMAP, 0, k, n) ? TOPK_DELTA : TOPK_BITMAP;
  let ib = indexBytes(mode, w, k, n);
  const gap = (j: number) => (j === 0 ? idx[0] : idx[j] - idx[j - 1] - 1);
  // Rice: the parameter r that minimises the stream (sum of quotients + k·(1 + r) bits).
  let r = 0;
  let riceBits = Infinity;
  for (let t = 0; t <= Math.min(w, 31); t++) {
    let bits = k * (1 + t);
    for (let j = 0; j < k; j++) bits += Math.floor(gap(j) / 2 ** t);
    if (bits < riceBits) [r, riceBits] = [t, bits];
  }
  const riceBytes = 4 + 4 * Math.ceil(riceBits / 32);
  if (riceBytes < ib) [mode, ib] = [TOPK_RICE, riceBytes];
  const payload = values.encode(kept, ctx);
  const out = new Uint8Array(HEADER + ib + payload.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, k, true);
  dv.setUint32(4, mode === TOPK_BITMAP ? mode : mode | ((mode === TOPK_RICE ? r : w) << 8), true);
  const words = new Uint32Array(ib / 4);
  if (mode === TOPK_DELTA) {
    for (let j = 0; j < k && w > 0; j++) writeBits(words, j * w, w, gap(j));
  } else if (mode === TOPK_BITMAP) {
    for (let j = 0; j < k; j++) words[idx[j] >>> 5] |= 1 << (idx[j] & 31);
  } else {
    words[0] = ib / 4 - 1;
    let p = 32; // bit position in the words (the stream starts after the length word)
    const put = (bit: number) => {
      if (bit) words[p >>> 5] |= 1 << (p & 31);
      p++;
    };
    for (let j = 0; j < k; j++) {
      const g = gap(j);
      p += Math.floor(g / 2 ** r);
      put(1);
      for (let b = 0; b < r; b++) put((g >>> b) & 1);
    }
  }
  for (let i = 0; i < words.length; i++) dv.setUint32(HEADER + 4 * i, words[i], true);
  out.set(payload, HEADER + ib);
  return out;
}

export function topkCodec(options: TopKOptions): SparseCodec {
  const { fraction } = options;
  checkFraction(fraction, 'top-k');
  const values = options.values ?? f32Codec;
  const name = `topk(${fraction})>${values.name}`;
  const keep = (n: number) => {
    checkCount(n, `${name} codec`);
    return keepCount(fraction, n);
  };

  return {
    name,
    fixedSize: false,
    fraction,
    values,
    keep,
    withValues: (v: Codec) => topkCodec({ fraction, values: v }),

    encodedBytes(n: number): number {
      const k = keep(n);
      const delta = 4 * Math.ceil((k * bitLength(n - k)) / 32);
      return HEADER + Math.min(indexBytes(TOPK_BITMAP, 0, k, n), delta) + values.encodedBytes(k);
    },

    encode(x: Float32Array, ctx?: CodecContext): Uint8Array {
      checkContext(ctx, `${name} encode`, false);
      checkFinite(x, name);
      const n = x.length;
      const k = keep(n);
      const idx = topkIndices(x, k);
      const kept = new Float32Array(k);
      for (let j = 0; j < k; j++) kept[j] = x[idx[j]];
      return topkPack(idx, kept, n, values, ctx);
    },

    decode(bytes: Uint8Array, n: number, ctx?: CodecContext): Float32Array {
      checkContext(ctx, `${name} decode`, false);
      const k = keep(n);
      if (bytes.length < HEADER)
        throw new RangeError(
          `${name} decode: expected at least ${HEADER} bytes (the header) for ${n} values, got ${bytes.length}`,
        );
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const hk = dv.getUint32(0, true);
      if (hk !== k) throw new RangeError(`${name} decode: header says k = ${hk}, expected k = ${k} for ${n} values`);
      const fmt = dv.getUint32(4, true);
      const mode = fmt & 0xff;
      const w = (fmt >>> 8) & 0xff;
      if (
        fmt >>> 16 !== 0 ||
        mode > TOPK_RICE ||
        (mode === TOPK_DELTA ? w > 32 : mode === TOPK_RICE ? w > 31 : w !== 0)
      ) {
        throw new RangeError(
          `${name} decode: bad format word 0x${fmt.toString(16)} (mode ` +
            `0 with w <= 32, mode 1 with w = 0, or mode 2 with w <= 31)`,
        );
      }
      let ib: number;
      if (mode === TOPK_RICE) {
        if (bytes.length < HEADER + 4)
          throw new RangeError(`${name} decode: ${bytes.length} bytes end before the Rice stream's length word`);
        const m = dv.getUint32(HEADER, true);
        // The encoder uses Rice only when it is smaller than the bitmap, so m is bounded by it.
        if (4 + 4 * m >= indexBytes(TOPK_BITMAP, 0, k, n) && 4 + 4 * m >= 4 * Math.ceil((k * bitLength(n - k)) / 32)) {
          throw new RangeError(
            `${name} decode: Rice stream of ${m} words is not smaller than the bitmap or delta layout for ${n} values`,
          );
        }
        ib = 4 + 4 * m;
        if (bytes.length < HEADER + ib)
          throw new RangeError(`${name} decode: the Rice stream needs ${HEADER + ib} bytes, got ${bytes.length}`);
      } else {
        ib = indexBytes(mode, w, k, n);
      }
      const start = HEADER + ib;
      const layout =
        mode === TOPK_DELTA
          ? `delta indices of ${w} bits`
          : mode === TOPK_RICE
            ? `Rice indices (parameter ${w}, ${ib} bytes)`
            : 'bitmap indices';
      if (values.fixedSize) {
        const expected = start + values.encodedBytes(k);
        if (bytes.length !== expected) {
          throw new RangeError(
            `${name} decode: expected ${expected} bytes for ${n} ` +
              `values (header: k = ${k}, ${layout}), got ${bytes.length}`,
          );
        }
      } else {
        const most = start + values.encodedBytes(k);
        if (bytes.length < start || bytes.length > most) {
          throw new RangeError(
            `${name} decode: expected ${start} to ${most} bytes for ${n} ` +
              `values (header: k = ${k}, ${layout}), got ${bytes.length}`,
          );
        }
      }
      const word = (i: number) => dv.getUint32(HEADER + 4 * i, true);
      const idx = new Uint32Array(k);
      if (mode === TOPK_DELTA) {
        let pos = -1;
        for (let j = 0; j < k; j++) {
          pos += (w > 0 ? readBits(word, j * w, w) : 0) + 1;
          if (pos >= n) throw new RangeError(`${name} decode: index ${j} is ${pos}, past the last element ${n - 1}`);
          idx[j] = pos;
        }
        const used = k * w;
        if (used % 32 !== 0 && word(Math.floor(used / 32)) >>> (used % 32) !== 0) {
          throw new RangeError(`${name} decode: the bits after the last delta must be 0`);
        }
      } else if (mode === TOPK_RICE) {
        const end = 8 * ib; // bits, counting the length word
        let p = 32;
        const bit = () => {
          if (p >= end)
            throw new RangeError(`${name} decode: the Rice stream ends (${ib - 4} bytes) before index ${k - 1}`);
          const b = (word(p >>> 5) >>> (p & 31)) & 1;
          p++;
          return b;
        };
        let pos = -1;
        for (let j = 0; j < k; j++) {
          let q = 0;
          while (bit() === 0)
            if (++q > n) throw new RangeError(`${name} decode: Rice quotient of index ${j} runs past n = ${n}`);
          let g = q * 2 ** w;
          for (let b = 0; b < w; b++) g += bit() * 2 ** b;
          pos += g + 1;
          if (pos >= n) throw new RangeError(`${name} decode: index ${j} is ${pos}, past the last element ${n - 1}`);
          idx[j] = pos;
        }
        if (Math.ceil(p / 32) !== ib / 4)
          throw new RangeError(
            `${name} decode: the Rice stream has ${ib / 4 - Math.ceil(p / 32)} words after its last index`,
          );
        if (p % 32 !== 0 && word(p >>> 5) >>> (p % 32) !== 0)
          throw new RangeError(`${name} decode: the bits after the last Rice code must be 0`);
      } else {
        let j = 0;
        for (let wi = 0; wi < ib / 4; wi++) {
          let m = word(wi);
          if (wi === ib / 4 - 1 && n % 32 !== 0 && m >>> (n % 32) !== 0) {
            throw new RangeError(`${name} decode: bitmap bits past element ${n - 1} must be 0`);
          }
          while (m !== 0) {
            const b = 31 - Math.clz32(m & -m);
            if (j >= k) throw new RangeError(`${name} decode: the bitmap marks more than k = ${k} elements`);
            idx[j++] = wi * 32 + b;
            m = (m & (m - 1)) >>> 0;
          }
        }
        if (j !== k) throw new RangeError(`${name} decode: the bitmap marks ${j} elements, expected k = ${k}`);
      }
      const kept = values.decode(bytes.subarray(start), k, ctx);
      const out = new Float32Array(n);
      for (let j = 0; j < k; j++) out[idx[j]] = kept[j];
      return out;
    },
  };
}
