// Error feedback for a lossy codec: what a round failed to send is added to the next round's
// update, so compression error does not accumulate as bias (Seide et al. 2014; Karimireddy et al. 2019).
import type { Codec, CodecContext } from './codec';

export class ErrorFeedback {
  /** What was not sent so far (f32, like the GPU's residual buffer). */
  readonly residual: Float32Array;

  constructor(
    readonly codec: Codec,
    readonly n: number,
    /**
     * Weight of the old residual, d = delta + decay·residual (1: classic error feedback). Below 1 the
     * residual is a leaky accumulator, as SparseLoCo (Sarfi et al. 2025) uses for DiLoCo pseudo-gradients:
     * a donor re-derives its unsent progress from θ_v every round, so a full residual counts it twice.
     */
    readonly decay = 1,
  ) {
    if (!Number.isInteger(n) || n < 0)
      throw new RangeError(`error feedback: n must be a non-negative integer, got ${n}`);
    if (!(decay >= 0 && decay <= 1)) throw new RangeError(`error feedback: decay must be in [0, 1], got ${decay}`);
    this.residual = new Float32Array(n);
  }

  /**
   * Encodes d = delta + residual and keeps residual ← d − decode(bytes). If encoding throws (e.g. a
   * NaN in delta) the residual is left as it was. ctx goes to the codec's encode and decode (codecs
   * with random choices need it).
   */
  encode(delta: Float32Array, ctx?: CodecContext): Uint8Array {
    return this.encodeSent(delta, ctx).bytes;
  }

  /** encode, also returning decode(bytes): what the receiver will reconstruct (decoded once, here). */
  encodeSent(delta: Float32Array, ctx?: CodecContext): { bytes: Uint8Array; sent: Float32Array } {
    if (delta.length !== this.n) throw new RangeError(`error feedback: expected ${this.n} values, got ${delta.length}`);
    const d = new Float32Array(this.n);
    for (let i = 0; i < this.n; i++) d[i] = delta[i] + this.decay * this.residual[i];
    const bytes = this.codec.encode(d, ctx);
    const sent = this.codec.decode(bytes, this.n, ctx);
    for (let i = 0; i < this.n; i++) this.residual[i] = d[i] - sent[i];
    return { bytes, sent };
  }

  reset(): void {
    this.residual.fill(0);
  }
}
