// Chunked top-1 sparsification: split the n values into chunks of C (the last may be shorter) and keep
// the largest |x| of each chunk, ties to the lower index. The kept count is m = ceil(n/C), a function of
// n alone, so no count is sent, and each kept index costs exactly b = bitLength(C − 1) bits (its offset
// in its chunk) where global top-k's Rice code costs about log2(C) + 1.5: at C = 32 (3.1% kept) 5 bits
// instead of ~6.5. The kept set is also a function of x alone (per chunk), so a GPU (one invocation
// per chunk) picks the same one. SparseLoCo (Sarfi et al. 2025) sparsifies pseudo-gradients this way.
//
// Layout (little-endian u32 words, then the inner payload), exact size
//   4·ceil(m·b/32) + values.encodedBytes(m):
//   offsets: field j (the kept element's offset in chunk j, < the chunk's length) at stream bits
//     [j·b, j·b + b), low bits of word 0 first, fields may straddle words, unused bits 0;
//   values: the inner codec's payload for the m kept values, in chunk order.
// Error feedback: the residual contracts per chunk, ||r||² ≤ (1 − 1/C)·||d||².
import type { Codec, CodecContext } from '../codec';
import { checkContext } from '../prng';
import { checkCount, checkFinite, f32Codec } from '../plain/plain';
import { type SparseCodec } from '../sparse';
import { bitLength, readBits, writeBits } from '../bits';

/** Chunk lengths accepted: 2 … 2^16. */
export const CHUNK_MIN = 2;
export const CHUNK_MAX = 65536;

export interface ChunkTopOptions {
  /** Chunk length C: one value kept per C. */
  chunk: number;
  /** Codec of the kept values (default f32). */
  values?: Codec;
}

export function checkChunk(chunk: number, who: string): void {
  if (!Number.isInteger(chunk) || chunk < CHUNK_MIN || chunk > CHUNK_MAX) {
    throw new RangeError(`${who}: the chunk length must be an integer in [${CHUNK_MIN}, ${CHUNK_MAX}], got ${chunk}`);
  }
}

/** The kept element of every chunk: indices (increasing), one per chunk of `chunk` values. */
export function chunkTopIndices(x: Float32Array, chunk: number): Uint32Array {
  const n = x.length;
  const idx = new Uint32Array(Math.ceil(n / chunk));
  for (let j = 0; j < idx.length; j++) {
    const lo = j * chunk;
    const hi = Math.min(n, lo + chunk);
    let best = lo;
    let a = Math.abs(x[lo]);
    for (let i = lo + 1; i < hi; i++) {
      const v = Math.abs(x[i]);
      if (v > a) [best, a] = [i, v];
    }
    idx[j] = best;
  }
  return idx;
}

/** Bytes of the offset section for n values. */
function offsetBytes(n: number, chunk: number): number {
  return 4 * Math.ceil((Math.ceil(n / chunk) * bitLength(chunk - 1)) / 32);
}

/**
 * The payload of a given kept set (one index per chunk, chunk j's in [j·C, min(n, j·C + C))) and its
 * values: what encode writes after chunkTopIndices, and what a GPU selection's read-back is packed by.
 */
export function chunkTopPack(
  idx: Uint32Array,
  kept: Float32Array,
  n: number,
  chunk: number,
  values: Codec,
  ctx?: CodecContext,
): Uint8Array {
  const m = Math.ceil(n / chunk);
  if (idx.length !== m || kept.length !== m)
    throw new RangeError(
      `chunk top pack: expected ${m} indices and values for ${n} values ` +
        `in chunks of ${chunk}, got ${idx.length} and ${kept.length}`,
    );
  const b = bitLength(chunk - 1);
  const ob = offsetBytes(n, chunk);
  const payload = values.encode(kept, ctx);
  const out = new Uint8Array(ob + payload.length);
  const words = new Uint32Array(ob / 4);
  for (let j = 0; j < m; j++) {
    const off = idx[j] - j * chunk;
    if (!(off >= 0 && off < Math.min(chunk, n - j * chunk)))
      throw new RangeError(`chunk top pack: index ${idx[j]} is outside chunk ${j}`);
    writeBits(words, j * b, b, off);
  }
  const dv = new DataView(out.buffer);
  for (let i = 0; i < words.length; i++) dv.setUint32(4 * i, words[i], true);
  out.set(payload, ob);
  return out;
}

export function chunkTopCodec(options: ChunkTopOptions): SparseCodec {
  const { chunk } = options;
  checkChunk(chunk, 'chunk top');
  const values = options.values ?? f32Codec;
  const name = `chunktop(${chunk})>${values.name}`;
  const b = bitLength(chunk - 1);
  const keep = (n: number) => {
    checkCount(n, `${name} codec`);
    return Math.ceil(n / chunk);
  };

  return {
    name,
    fixedSize: values.fixedSize,
    // keepCount(1/C, n) = ceil(n/C) = keep(n): compose.ts may treat it like any sparsifier.
    fraction: 1 / chunk,
    values,
    keep,
    withValues: (v: Codec) => chunkTopCodec({ chunk, values: v }),

    encodedBytes(n: number): number {
      return offsetBytes(n, chunk) + values.encodedBytes(keep(n));
    },

    encode(x: Float32Array, ctx?: CodecContext): Uint8Array {
      checkContext(ctx, `${name} encode`, false);
      checkFinite(x, name);
      const n = x.length;
      const idx = chunkTopIndices(x, chunk);
      const kept = new Float32Array(idx.length);
      for (let j = 0; j < idx.length; j++) kept[j] = x[idx[j]];
      return chunkTopPack(idx, kept, n, chunk, values, ctx);
    },

    decode(bytes: Uint8Array, n: number, ctx?: CodecContext): Float32Array {
      checkContext(ctx, `${name} decode`, false);
      const m = keep(n);
      const ob = offsetBytes(n, chunk);
      const most = ob + values.encodedBytes(m);
      if (values.fixedSize ? bytes.length !== most : bytes.length < ob || bytes.length > most) {
        const want = values.fixedSize ? `${most}` : `${ob} to ${most}`;
        throw new RangeError(
          `${name} decode: expected ${want} bytes for ${n} values (${m} chunks, ${b}-bit offsets), got ${bytes.length}`,
        );
      }
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const word = (i: number) => dv.getUint32(4 * i, true);
      const out = new Float32Array(n);
      const kept = values.decode(bytes.subarray(ob), m, ctx);
      for (let j = 0; j < m; j++) {
        const off = readBits(word, j * b, b);
        const len = Math.min(chunk, n - j * chunk);
        if (off >= len) throw new RangeError(`${name} decode: chunk ${j} names offset ${off}, past its ${len} values`);
        out[j * chunk + off] = kept[j];
      }
      const used = m * b;
      if (used % 32 !== 0 && word(used >>> 5) >>> (used & 31) !== 0)
        throw new RangeError(`${name} decode: the bits after the last offset must be 0`);
      return out;
    },
  };
}
