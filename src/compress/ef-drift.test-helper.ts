// Shared by the codec tests (not shipped): feed a codec `rounds` updates with a consistent signal
// (a fixed mean per element plus noise), with and without error feedback, and report how far the
// sums of the decoded updates drift from the sum of the inputs.
import { Rng } from '../util/rng';
import type { Codec, CodecContext } from './codec';
import { ErrorFeedback } from './error-feedback';

export interface EfDrift {
  /** Per element, the sum of the inputs. */
  given: Float64Array;
  /** Per element, |sent with EF + residual − given|: the EF bookkeeping's own error. */
  balanceErr: Float64Array;
  /** Mean |given − sent| with and without error feedback. */
  driftEf: number;
  driftPlain: number;
}

export function efDrift(codec: Codec, n: number, opts: { rngSeed: number; ctxSeed: number; rounds: number }): EfDrift {
  const rng = new Rng(opts.rngSeed);
  const mean = rng.uniformArray(n, -1, 1);
  const ef = new ErrorFeedback(codec, n);
  const given = new Float64Array(n);
  const sentEf = new Float64Array(n);
  const sentPlain = new Float64Array(n);
  for (let r = 0; r < opts.rounds; r++) {
    const ctx: CodecContext = { seed: opts.ctxSeed, round: r, stream: 0 };
    const x = rng.uniformArray(n, -0.3, 0.3);
    for (let i = 0; i < n; i++) x[i] += mean[i];
    const y = codec.decode(ef.encode(x, ctx), n, ctx);
    const yPlain = codec.decode(codec.encode(x, ctx), n, ctx);
    for (let i = 0; i < n; i++) {
      given[i] += x[i];
      sentEf[i] += y[i];
      sentPlain[i] += yPlain[i];
    }
  }
  const balanceErr = new Float64Array(n);
  let driftEf = 0;
  let driftPlain = 0;
  for (let i = 0; i < n; i++) {
    balanceErr[i] = Math.abs(sentEf[i] + ef.residual[i] - given[i]);
    driftEf += Math.abs(given[i] - sentEf[i]) / n;
    driftPlain += Math.abs(given[i] - sentPlain[i]) / n;
  }
  return { given, balanceErr, driftEf, driftPlain };
}
