// `starling train`'s flags → LocalTrainOptions. Model flags go through the job spec's rules
// (parseJobSpec), so the CLI and the API accept the same models; an error names the flag typed.
import { parseArgs } from 'node:util';
import { DEFAULT_GRAD_CLIP, JobSpecError, parseJobSpec, type ModelSpec } from '../coordinator/job-spec';
import type { LocalTrainOptions } from './train-local';
import { UsageError } from '../src/util/usage-error';

export { UsageError };

/** The flag each model field comes from. */
const MODEL_FLAGS: Record<string, string> = {
  'model.type': '--model',
  'model.context': '--context',
  'model.embed': '--embed',
  'model.hidden': '--hidden',
  'model.layers': '--layers',
  'model.heads': '--heads',
  'model.width': '--width',
  'model.tiedEmbeddings': '--tied/--untied',
  'model.lowRank': '--rank',
  'model.lowRank.rank': '--rank',
  'model.lowRank.layers': '--lowrank-layers',
};

function checkModel(model: Record<string, unknown>): ModelSpec {
  try {
    return parseJobSpec({ model }).model;
  } catch (e) {
    if (e instanceof JobSpecError) throw new UsageError(`${MODEL_FLAGS[e.field] ?? e.field}: ${e.message}`);
    throw e;
  }
}

const STRING_FLAGS = [
  'model', 'data', 'steps', 'batch', 'lr', 'warmup', 'context', 'embed', 'hidden', 'layers', 'heads', 'width', 'rank',
  'lowrank-layers', 'lowrank-at', 'grad-clip', 'eval-every', 'log-every', 'eval-tokens', 'out', 'seed', 'max-bytes', 'sample-tokens',
] as const;

/** Parses `starling train` arguments; throws UsageError (or parseArgs' TypeError) naming the flag. */
export function parseTrainArgs(args: string[]): Omit<LocalTrainOptions, 'log'> {
  const { values: v } = parseArgs({
    args,
    options: {
      ...Object.fromEntries(STRING_FLAGS.map((k) => [k, { type: 'string' as const }])),
      tied: { type: 'boolean' },
      untied: { type: 'boolean' },
      cuttlefish: { type: 'boolean' },
    },
  });
  const flag = (k: (typeof STRING_FLAGS)[number]) => (v as Record<string, string | undefined>)[k];
  const int = (k: (typeof STRING_FLAGS)[number], def: number, lo: number, hi: number): number => {
    const s = flag(k);
    if (s === undefined) return def;
    const n = Number(s);
    if (!Number.isInteger(n) || n < lo || n > hi) throw new UsageError(`--${k} must be an integer in [${lo}, ${hi}], got "${s}"`);
    return n;
  };
  // Model sizes are checked by the spec's rules (which name the limits), so only "is an integer" here.
  const size = (k: (typeof STRING_FLAGS)[number]) => (flag(k) === undefined ? undefined : int(k, 0, -Infinity, Infinity));

  const type = flag('model') ?? 'mlp';
  if (type !== 'mlp' && type !== 'gpt') throw new UsageError(`--model must be "mlp" or "gpt", got "${type}"`);
  if (v.tied && v.untied) throw new UsageError('--tied and --untied contradict each other; give one');
  const lowRankAt = size('lowrank-at');
  const rank = size('rank');
  const lowRankLayers = flag('lowrank-layers');
  if (v.cuttlefish && lowRankAt === undefined) throw new UsageError('--cuttlefish picks the rank at the switch to low rank; it needs --lowrank-at STEP');
  if (v.cuttlefish && rank !== undefined) throw new UsageError('--cuttlefish chooses the rank; leave out --rank');
  if (lowRankAt !== undefined && rank === undefined && !v.cuttlefish) throw new UsageError('--lowrank-at STEP needs the rank: --rank R or --cuttlefish');
  if (lowRankLayers !== undefined && rank === undefined && !v.cuttlefish) {
    throw new UsageError('--lowrank-layers needs --rank R (or --lowrank-at STEP --cuttlefish)');
  }
  const layers = lowRankLayers ?? 'middle';
  const input: Record<string, unknown> = {
    type,
    context: size('context'),
    embed: size('embed'),
    hidden: size('hidden'),
    layers: size('layers'),
    heads: size('heads'),
    width: size('width'),
    tiedEmbeddings: v.tied ? true : v.untied ? false : undefined,
    // --rank alone: low rank from the start; with --lowrank-at it is the rank of the switch.
    lowRank: rank !== undefined && lowRankAt === undefined ? { rank, layers } : undefined,
  };
  for (const k of Object.keys(input)) if (input[k] === undefined) delete input[k];
  const model = checkModel(input);
  // The model after a switch must be valid too (Cuttlefish's rank is only known then; 1 stands in).
  if (lowRankAt !== undefined) checkModel({ ...input, lowRank: { rank: rank ?? 1, layers } });

  const num = (k: 'lr' | 'grad-clip', def: number, ok: (x: number) => boolean, rule: string): number => {
    const s = flag(k);
    if (s === undefined) return def;
    const x = Number(s);
    if (s.trim() === '' || !Number.isFinite(x) || !ok(x)) throw new UsageError(`--${k} must be ${rule}, got "${s}"`);
    return x;
  };
  const steps = int('steps', 2000, 1, 10_000_000);
  const evalEvery = int('eval-every', 200, 1, 10_000_000);
  return {
    source: flag('data') ?? 'builtin:cmudict',
    maxBytes: int('max-bytes', 1_000_000, 1024, 32 * 1024 * 1024),
    valFraction: 0.1,
    model,
    steps,
    batch: int('batch', 64, 1, 4096),
    lr: num('lr', 3e-3, (x) => x > 0 && x <= 1, 'a number in (0, 1]'),
    warmup: int('warmup', Math.min(100, steps), 0, steps),
    minLrRatio: 0.1,
    weightDecay: 0,
    gradClip: num('grad-clip', DEFAULT_GRAD_CLIP[model.type], (x) => x >= 0, 'a number ≥ 0 (0: off)'),
    evalEvery,
    logEvery: int('log-every', Math.ceil(evalEvery / 5), 0, 10_000_000),
    evalTargets: int('eval-tokens', 2048, 1, 10_000_000),
    seed: int('seed', 1, 0, 0xffffffff),
    ...(lowRankAt === undefined ? {} : { lowRankAt: { step: lowRankAt, rank: rank ?? 'cuttlefish', layers: layers as 'middle' | 'all' } }),
    out: flag('out') ?? 'model.safetensors',
    sampleTokens: int('sample-tokens', 200, 0, 100_000),
  };
}
