// Composition of codecs: composeCodecs(s_1, …, s_m, v) feeds the values kept by each sparsifier s_i
// (topk.ts, randomk.ts) to the next stage, and the last stage's survivors to the value codec v, e.g.
// CocktailSGD's composeCodecs(randomkCodec({fraction: f}), topkCodec({fraction: g}), q4): random-k
// picks ceil(f·n) values from the shared context, top-k keeps the ceil(g·ceil(f·n)) largest of those,
// and 4-bit blockwise quantization encodes the survivors. It is s_1.withValues(s_2.withValues(… v)),
// so the payload is nested: each stage's layout holds the next stage's payload where its values go.
//
// Sizes follow the stages' own rules: random-k adds nothing to its inner payload (fixed size exactly
// when its inner codec is), top-k adds its header and indices (never fixed size; its encodedBytes is
// the maximum and uses the inner codec's maximum). Every stage receives the same context; the stages
// draw with different PRNG purposes, so their random choices are independent (the same sparsifier
// twice in one chain would repeat its draws on the survivors' positions).
import type { Codec } from './codec';
import type { SparseCodec } from './sparse';

export function isSparseCodec(c: Codec): c is SparseCodec {
  return (
    typeof (c as Partial<SparseCodec>).withValues === 'function' &&
    typeof (c as Partial<SparseCodec>).keep === 'function'
  );
}

/** s_1 → … → s_m → values; with a single codec, that codec. */
export function composeCodecs(...stages: Codec[]): Codec {
  if (stages.length === 0) throw new RangeError('composeCodecs: at least one codec is required');
  let inner = stages[stages.length - 1];
  for (let i = stages.length - 2; i >= 0; i--) {
    const s = stages[i];
    if (!isSparseCodec(s)) {
      throw new RangeError(
        `composeCodecs: stage ${i} (${s.name}) is not a sparsifier; only the last stage may be a value codec`,
      );
    }
    inner = s.withValues(inner);
  }
  return inner;
}
