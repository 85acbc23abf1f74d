// A codec turns a flat f32 update into bytes and back. Every codec states its encoded size up front
// so a receiver can reject a payload of the wrong length before decoding it: fixed-size codecs give
// the exact size of every payload; data-dependent ones (top-k picks delta or bitmap indices) give
// the most they can produce, write their layout in a small header, and decode refuses a payload
// whose length differs from what its header implies.

/**
 * What makes a codec's random choices (stochastic rounding, random-k's indices) reproducible: any
 * party holding the same context draws the same numbers, bit for bit (counter-based PRNG, no state).
 */
export interface CodecContext {
  /** The job's seed. */
  seed: number;
  /** Round (or outer step) of the job. */
  round: number;
  /** Which tensor or stream (e.g. a parameter's index; the downlink uses its own). */
  stream: number;
}

export interface Codec {
  readonly name: string;
  /** True when every n-element payload has exactly encodedBytes(n) bytes. */
  readonly fixedSize: boolean;
  /** Bytes `encode` produces for an n-element input: exact when fixedSize, else the maximum. */
  encodedBytes(n: number): number;
  /** Codecs that draw random numbers require ctx and throw a RangeError without it. */
  encode(x: Float32Array, ctx?: CodecContext): Uint8Array;
  /** Throws a RangeError naming the expected and actual sizes when `bytes` has the wrong length. */
  decode(bytes: Uint8Array, n: number, ctx?: CodecContext): Float32Array;
}
