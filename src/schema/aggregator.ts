// The grammar of `train.aggregator` (how the coordinator combines a round's updates; the aggregators
// themselves are src/sync/aggregate.ts). Here, in the schema layer, so the job schema can use its pattern.

/** A parsed `train.aggregator`. */
export type Aggregator =
  | { kind: 'mean' }
  | { kind: 'clipped-mean'; tau: number }
  | { kind: 'trimmed-mean'; fraction: number }
  | { kind: 'median' };

/** τ of `clipped-mean`: 2 leaves honest updates (whose norms spread far less than 2× around their median) unclipped. */
export const DEFAULT_CLIP_TAU = 2;

/** The accepted forms, for error messages and the job docs. */
export const AGGREGATOR_FORMS =
  '`mean`, `clipped-mean` or `clipped-mean:T` (T in [1, 100]), `trimmed-mean:F` (0 ≤ F < 0.5), `median`';

/** The job schema's pattern (the exact ranges are checked by parseAggregator). */
export const AGGREGATOR_PATTERN = '^(mean|median|clipped-mean(:[0-9.]+)?|trimmed-mean:[0-9.]+)$';

/** Parses an aggregator name; throws a RangeError naming the field, the value and the accepted forms. */
export function parseAggregator(name: string, field = 'train.aggregator'): Aggregator {
  const bad = (why: string) =>
    new RangeError(`${field}: ${JSON.stringify(name)} ${why}; accepted: ${AGGREGATOR_FORMS}`);
  const num = (s: string): number => (/^\d+(\.\d+)?$|^\.\d+$/.test(s) ? Number(s) : NaN);
  if (name === 'mean' || name === 'median') return { kind: name };
  if (name === 'clipped-mean') return { kind: 'clipped-mean', tau: DEFAULT_CLIP_TAU };
  let m = /^clipped-mean:(.*)$/.exec(name);
  if (m) {
    const tau = num(m[1]);
    if (!(tau >= 1 && tau <= 100)) throw bad('has τ outside [1, 100]');
    return { kind: 'clipped-mean', tau };
  }
  m = /^trimmed-mean:(.*)$/.exec(name);
  if (m) {
    const fraction = num(m[1]);
    if (!(fraction >= 0 && fraction < 0.5)) throw bad('has a trimmed fraction outside [0, 0.5)');
    return { kind: 'trimmed-mean', fraction };
  }
  throw bad('is not an aggregator');
}

/** The canonical name of an aggregator (`clipped-mean` at the default τ). */
export function aggregatorName(a: Aggregator): string {
  switch (a.kind) {
    case 'clipped-mean':
      return a.tau === DEFAULT_CLIP_TAU ? 'clipped-mean' : `clipped-mean:${a.tau}`;
    case 'trimmed-mean':
      return `trimmed-mean:${a.fraction}`;
    default:
      return a.kind;
  }
}
