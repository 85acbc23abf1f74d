// Error feedback for a lossy codec: what a round failed to send is added to the next round's
// update, so compression error does not accumulate as bias (Seide et al. 2014; Karimireddy et al. 2019).
import type { Codec, CodecContext } from './codec';

export class ErrorFeedback {
  /** What was not sent so far (f32, like the GPU's residual buffer). */
  readonly residual: Float32Array;

  constructor(
    readonly codec: Codec,
    readonly n: number,
  ) {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`error feedback: n must be a non-negative integer, got ${n}`);
    this.residual = new Float32Array(n);
  }

  /**
   * Encodes d = delta + residual and keeps residual ← d − decode(bytes). If encoding throws (e.g. a
   * NaN in delta) the residual is left as it was. ctx goes to the codec's encode and decode (codecs
   * with random choices need it).
   */
  encode(delta: Float32Array, ctx?: CodecContext): Uint8Array {
    if (delta.length !== this.n) throw new RangeError(`error feedback: expected ${this.n} values, got ${delta.length}`);
    const d = new Float32Array(this.n);
    for (let i = 0; i < this.n; i++) d[i] = delta[i] + this.residual[i];
    const bytes = this.codec.encode(d, ctx);
    const sent = this.codec.decode(bytes, this.n, ctx);
    for (let i = 0; i < this.n; i++) this.residual[i] = d[i] - sent[i];
    return bytes;
  }

  reset(): void {
    this.residual.fill(0);
  }
}
