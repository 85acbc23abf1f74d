// Deterministic views of a token stream for next-token training: a train/validation split, the
// contiguous shards donors train on, random training windows and fixed evaluation windows.
// A window is `context` input tokens followed by its target, so every piece needs context + 1 tokens.
// The MLP predicts one target per window (sampleBatch, evalWindows); a GPT predicts at every position,
// so its sequences carry a target per token: the same window shifted by one (sampleSequences,
// evalSequences).
import type { Rng } from '../util/rng';

export interface Batch {
  /** batch × context input tokens, row-major. */
  tokens: Int32Array;
  /** Windows: the token that follows each row (batch of them). Sequences: batch × context, tokens shifted by one. */
  targets: Int32Array;
}

function checkInt(name: string, v: number, lo: number, hi = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isInteger(v) || v < lo || v > hi) {
    const range = hi === Number.MAX_SAFE_INTEGER ? `>= ${lo}` : `in [${lo}, ${hi}]`;
    throw new RangeError(`${name} must be an integer ${range}, got ${v}`);
  }
}

/**
 * Splits off the last `valFraction` of the stream (at least context + 1 tokens) as validation.
 * Contiguous rather than shuffled so that no validation window overlaps a training window.
 */
export function splitTokens(
  tokens: Int32Array,
  valFraction: number,
  context: number,
): { train: Int32Array; val: Int32Array } {
  checkInt('context', context, 1);
  if (!(typeof valFraction === 'number' && valFraction > 0 && valFraction < 1)) {
    throw new RangeError(`valFraction must be a number in (0, 1), got ${valFraction}`);
  }
  const need = context + 1;
  const n = tokens.length;
  const nVal = Math.max(need, Math.round(n * valFraction));
  if (n - nVal < need) {
    throw new RangeError(
      `corpus too small: ${n} tokens, need at least ${nVal + need} (${need} for training and ${nVal} for ` +
        `validation with context ${context} and valFraction ${valFraction})`,
    );
  }
  return { train: tokens.subarray(0, n - nVal), val: tokens.subarray(n - nVal) };
}

/** The [start, end) range of shard `shardIndex` when `nTrain` tokens are cut into `shardCount` near-equal pieces. */
export function shardRange(nTrain: number, shardIndex: number, shardCount: number): [number, number] {
  checkInt('nTrain', nTrain, 1);
  checkInt('shardCount', shardCount, 1, nTrain);
  checkInt('shardIndex', shardIndex, 0, shardCount - 1);
  // floor(i·n/c) spreads the remainder; the product stays exact below 2^53 for any real corpus.
  const start = Math.floor((shardIndex * nTrain) / shardCount);
  const end = Math.floor(((shardIndex + 1) * nTrain) / shardCount);
  return [start, end];
}

/** Smallest shard length shardRange produces for these sizes. */
export function minShardLength(nTrain: number, shardCount: number): number {
  return Math.floor(nTrain / shardCount);
}

/** `batch` windows at uniformly random positions; rows are context tokens, targets the next token. */
export function sampleBatch(tokens: Int32Array, context: number, batch: number, rng: Rng): Batch {
  checkInt('context', context, 1);
  checkInt('batch', batch, 1);
  const positions = tokens.length - context; // window starts 0 .. n - context - 1
  if (positions < 1) {
    throw new RangeError(
      `cannot sample windows of context ${context}: only ${tokens.length} tokens, need ${context + 1}`,
    );
  }
  const x = new Int32Array(batch * context);
  const y = new Int32Array(batch);
  for (let b = 0; b < batch; b++) {
    const s = rng.int(positions);
    x.set(tokens.subarray(s, s + context), b * context);
    y[b] = tokens[s + context];
  }
  return { tokens: x, targets: y };
}

/** Up to `maxExamples` evenly spaced windows covering the stream, the same on every call. */
export function evalWindows(tokens: Int32Array, context: number, maxExamples: number): Batch {
  checkInt('context', context, 1);
  checkInt('maxExamples', maxExamples, 1);
  const positions = tokens.length - context;
  if (positions < 1) {
    throw new RangeError(
      `cannot make evaluation windows of context ${context}: only ${tokens.length} tokens, need ${context + 1}`,
    );
  }
  const count = Math.min(maxExamples, positions);
  const x = new Int32Array(count * context);
  const y = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const s = Math.floor((i * positions) / count);
    x.set(tokens.subarray(s, s + context), i * context);
    y[i] = tokens[s + context];
  }
  return { tokens: x, targets: y };
}

/** Copies the window starting at `s` into row `row`: tokens[s..s+T) and, shifted by one, targets. */
function putSequence(src: Int32Array, s: number, T: number, row: number, x: Int32Array, y: Int32Array): void {
  x.set(src.subarray(s, s + T), row * T);
  y.set(src.subarray(s + 1, s + T + 1), row * T);
}

/**
 * `batch` sequences at uniformly random positions for a model that predicts every position: each
 * takes a window of context + 1 tokens; tokens are its first `context`, targets its last `context`
 * (targets[i] is the token after tokens[i]). Both are batch × context, row-major.
 */
export function sampleSequences(tokens: Int32Array, context: number, batch: number, rng: Rng): Batch {
  checkInt('context', context, 1);
  checkInt('batch', batch, 1);
  const positions = tokens.length - context;
  if (positions < 1) {
    throw new RangeError(
      `cannot sample sequences of context ${context}: only ${tokens.length} tokens, need ${context + 1}`,
    );
  }
  const x = new Int32Array(batch * context);
  const y = new Int32Array(batch * context);
  for (let b = 0; b < batch; b++) putSequence(tokens, rng.int(positions), context, b, x, y);
  return { tokens: x, targets: y };
}

/**
 * Up to `maxSequences` evenly spaced sequences (as sampleSequences') covering the stream, the same on
 * every call; they do not overlap when the stream holds maxSequences · context + 1 tokens or more.
 */
export function evalSequences(tokens: Int32Array, context: number, maxSequences: number): Batch {
  checkInt('context', context, 1);
  checkInt('maxSequences', maxSequences, 1);
  const positions = tokens.length - context;
  if (positions < 1) {
    throw new RangeError(
      `cannot make evaluation sequences of context ${context}: only ${tokens.length} tokens, need ${context + 1}`,
    );
  }
  const count = Math.min(maxSequences, positions);
  const x = new Int32Array(count * context);
  const y = new Int32Array(count * context);
  // From the first start to the last (positions − 1), so that count·context + 1 tokens give
  // back-to-back sequences and the tail of the stream is always evaluated.
  const last = positions - 1;
  for (let i = 0; i < count; i++)
    putSequence(tokens, count === 1 ? 0 : Math.floor((i * last) / (count - 1)), context, i, x, y);
  return { tokens: x, targets: y };
}
