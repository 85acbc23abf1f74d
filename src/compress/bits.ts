// Bit fields in a stream of u32 words, as the sparse codecs' index payloads pack them (top-k's delta
// and Rice codes, chunk top's per-chunk offsets, random-k's header widths).

/** Bits needed to write v (0 for 0). */
export function bitLength(v: number): number {
  return v === 0 ? 0 : 32 - Math.clz32(v);
}

/** ORs the w-bit field v (1 ≤ w ≤ 32) into `words` at stream bit `pos`: low bits first, straddling words. */
export function writeBits(words: Uint32Array, pos: number, w: number, v: number): void {
  const wi = pos >>> 5;
  const sh = pos & 31;
  words[wi] |= v << sh;
  if (sh + w > 32) words[wi + 1] |= v >>> (32 - sh);
}

/** The w-bit field (1 ≤ w ≤ 32) at stream bit `pos` of the words `word(i)` returns (writeBits' layout). */
export function readBits(word: (i: number) => number, pos: number, w: number): number {
  const wi = pos >>> 5;
  const sh = pos & 31;
  let v = word(wi) >>> sh;
  if (sh + w > 32) v |= word(wi + 1) << (32 - sh);
  return (w === 32 ? v : v & ((1 << w) - 1)) >>> 0;
}
