// Random-k sparsification: keep k = max(1, ceil(fraction·n)) values at indices drawn from the shared
// codec context, so no indices are sent: the payload is just the inner codec's encoding of the k kept
// values (f32 by default), and its size is exactly values.encodedBytes(k) when the inner codec has a
// fixed size.
//
// Indices (randomkIndices): the j-th kept index, j < k, is π(j) for a pseudo-random permutation π of
// [0, n): an 8-round balanced Feistel network on 2h bits (h = max(1, ceil(bitLength(n−1)/2)), so
// 2^(2h) < 4n), round r mapping (L, R) → (R, L ⊕ (lowbias32(R ⊕ K_r) & (2^h − 1))), with round keys
// K_r = randomU32(ctx, PURPOSE_RANDOM_K, r), r = 0..7; values outside [0, n) are fed through again
// ("cycle walking", fewer than 4 passes on average), which keeps π a bijection on [0, n). The k
// indices are therefore distinct, each is computed on its own (one GPU invocation each), and kept
// values are sent in the order j = 0..k−1 (not sorted by index).
//
// Scaling: 'none' (default) sends the kept values as they are and decodes dropped ones as 0; that is
// biased (E[decode] = (k/n)·x) and meant for use with error feedback, which re-sends what was dropped
// (the usual choice, as in CocktailSGD). 'unbiased' multiplies the decoded values by f32(n/k), so
// E[decode] = x over random contexts, at k/n times the variance; it is for use without error feedback.
import type { Codec, CodecContext } from '../codec';
import { checkContext, lowbias32, randomU32, PURPOSE_RANDOM_K } from '../prng';
import { checkCount, checkFinite, f32Codec } from '../plain/plain';
import { checkFraction, keepCount, type SparseCodec } from '../sparse';
import { bitLength } from '../bits';

export const FEISTEL_ROUNDS = 8;

export type RandomKScale = 'none' | 'unbiased';

export interface RandomKOptions {
  fraction: number;
  /** Codec of the kept values (default f32). */
  values?: Codec;
  /** 'none' (default, for error feedback) or 'unbiased' (decoded values times n/k). */
  scale?: RandomKScale;
}

/** Half width h of the Feistel network for n elements: the domain is [0, 2^(2h)) ⊇ [0, n). */
export function feistelHalfBits(n: number): number {
  return Math.max(1, Math.ceil(bitLength(Math.max(0, n - 1)) / 2));
}

/** The round keys K_0..K_7 of (ctx). */
export function feistelKeys(ctx: CodecContext): Uint32Array {
  const keys = new Uint32Array(FEISTEL_ROUNDS);
  for (let r = 0; r < FEISTEL_ROUNDS; r++) keys[r] = randomU32(ctx, PURPOSE_RANDOM_K, r);
  return keys;
}

/** π(j) for j in [0, n): the Feistel permutation of [0, 2^(2h)) with cycle walking into [0, n). */
export function feistelPermute(j: number, n: number, h: number, keys: Uint32Array): number {
  const mask = h >= 32 ? 0xffffffff : (1 << h) - 1;
  let v = j;
  do {
    let l = v >>> h;
    let r = v & mask;
    for (let i = 0; i < keys.length; i++) {
      const f = lowbias32((r ^ keys[i]) >>> 0) & mask;
      const t = (l ^ f) >>> 0;
      l = r;
      r = t;
    }
    v = (l * 2 ** h + r) >>> 0;
  } while (v >= n);
  return v;
}

/** The k indices of (ctx) for n elements: π(0), …, π(k−1), distinct, in that order. */
export function randomkIndices(ctx: CodecContext, n: number, k: number): Uint32Array {
  if (!Number.isInteger(k) || k < 0 || k > n)
    throw new RangeError(`random-k: k must be an integer in [0, ${n}], got ${k}`);
  const h = feistelHalfBits(n);
  const keys = feistelKeys(ctx);
  const idx = new Uint32Array(k);
  for (let j = 0; j < k; j++) idx[j] = feistelPermute(j, n, h, keys);
  return idx;
}

export function randomkCodec(options: RandomKOptions): SparseCodec {
  const { fraction } = options;
  checkFraction(fraction, 'random-k');
  const values = options.values ?? f32Codec;
  const scale = options.scale ?? 'none';
  if (scale !== 'none' && scale !== 'unbiased')
    throw new RangeError(`random-k: scale must be 'none' or 'unbiased', got ${String(scale)}`);
  const name = `randomk(${fraction}${scale === 'unbiased' ? ',unbiased' : ''})>${values.name}`;
  const keep = (n: number) => {
    checkCount(n, `${name} codec`);
    if (n > 2 ** 32) throw new RangeError(`${name} codec: at most 2^32 elements, got ${n}`);
    return keepCount(fraction, n);
  };

  return {
    name,
    fixedSize: values.fixedSize,
    fraction,
    values,
    keep,
    withValues: (v: Codec) => randomkCodec({ fraction, values: v, scale }),

    encodedBytes(n: number): number {
      return values.encodedBytes(keep(n));
    },

    encode(x: Float32Array, ctx?: CodecContext): Uint8Array {
      checkContext(ctx, `${name} encode`, true);
      checkFinite(x, name);
      const n = x.length;
      const idx = randomkIndices(ctx as CodecContext, n, keep(n));
      const kept = new Float32Array(idx.length);
      for (let j = 0; j < idx.length; j++) kept[j] = x[idx[j]];
      return values.encode(kept, ctx);
    },

    decode(bytes: Uint8Array, n: number, ctx?: CodecContext): Float32Array {
      checkContext(ctx, `${name} decode`, true);
      const k = keep(n);
      if (values.fixedSize && bytes.length !== values.encodedBytes(k)) {
        throw new RangeError(
          `${name} decode: expected ${values.encodedBytes(k)} bytes for ${n} values (k = ${k}), got ${bytes.length}`,
        );
      }
      const kept = values.decode(bytes, k, ctx);
      const idx = randomkIndices(ctx as CodecContext, n, k);
      const s = scale === 'unbiased' && k > 0 ? Math.fround(n / k) : 1;
      const out = new Float32Array(n);
      for (let j = 0; j < k; j++) out[idx[j]] = kept[j] * s;
      return out;
    },
  };
}
