// Next-token sampling from logits: greedy (temperature 0) or from softmax(logits / temperature),
// optionally restricted to the top-k tokens. Deterministic for a given Rng seed.
import { Rng } from '../util/rng';

export interface SampleOptions {
  /** 0 = greedy; otherwise > 0. */
  temperature: number;
  /** Keep only the k most likely tokens (0 or undefined: all). */
  topK?: number;
}

export function validateSampleOptions(o: SampleOptions): void {
  if (!(Number.isFinite(o.temperature) && o.temperature >= 0 && o.temperature <= 100)) {
    throw new RangeError(`temperature must be a number in [0, 100], got ${o.temperature}`);
  }
  if (o.topK !== undefined && (!Number.isInteger(o.topK) || o.topK < 0)) {
    throw new RangeError(`topK must be an integer ≥ 0, got ${o.topK}`);
  }
}

export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** The probabilities sampling draws from (for tests and for showing them). */
export function samplingDistribution(logits: ArrayLike<number>, o: SampleOptions): Float64Array {
  const n = logits.length;
  const p = new Float64Array(n);
  if (o.temperature === 0) {
    p[argmax(logits)] = 1;
    return p;
  }
  let keep: Set<number> | null = null;
  if (o.topK && o.topK < n) {
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => logits[b] - logits[a]);
    keep = new Set(order.slice(0, o.topK));
  }
  let max = -Infinity;
  for (let i = 0; i < n; i++) if ((!keep || keep.has(i)) && logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < n; i++) {
    p[i] = !keep || keep.has(i) ? Math.exp((logits[i] - max) / o.temperature) : 0;
    sum += p[i];
  }
  for (let i = 0; i < n; i++) p[i] /= sum;
  return p;
}

export function sampleToken(logits: ArrayLike<number>, o: SampleOptions, rng: Rng): number {
  if (o.temperature === 0) return argmax(logits);
  const p = samplingDistribution(logits, o);
  let u = rng.next();
  for (let i = 0; i < p.length; i++) {
    u -= p[i];
    if (u < 0) return i;
  }
  // Rounding left a sliver: return the last token with any mass.
  for (let i = p.length - 1; i >= 0; i--) if (p[i] > 0) return i;
  return 0;
}

/**
 * Autoregressive generation: `nextLogits(context)` gives the logits after the last `window` tokens.
 * Returns the prompt followed by `count` new tokens.
 */
export async function generate(
  nextLogits: (context: Int32Array) => Promise<ArrayLike<number>> | ArrayLike<number>,
  prompt: Int32Array,
  count: number,
  window: number,
  o: SampleOptions & { seed: number },
): Promise<Int32Array> {
  validateSampleOptions(o);
  if (!Number.isInteger(count) || count < 0 || count > 100_000)
    throw new RangeError(`count must be an integer in [0, 100000], got ${count}`);
  const rng = new Rng(o.seed);
  const out = Array.from(prompt);
  for (let i = 0; i < count; i++) {
    const ctx = Int32Array.from(out.slice(Math.max(0, out.length - window)));
    out.push(sampleToken(await nextLogits(ctx), o, rng));
  }
  return Int32Array.from(out);
}
