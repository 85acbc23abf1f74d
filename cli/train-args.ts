// `starling train`'s flags → LocalTrainOptions. Model flags go through the job spec's rules
// (parseJobSpec), so the CLI and the API accept the same models; an error names the flag typed.
import { parseArgs } from 'node:util';
import type { TSchema } from '@sinclair/typebox';
import { DEFAULT_GRAD_CLIP, JobSpecError, parseJobSpec, type ModelSpec } from '../coordinator/job-spec';
import { describeSchema, schemaProblem } from '../src/schema/check';
import { JobSpec } from '../src/schema/job';
import { GptSpec, MlpSpec } from '../src/schema/model';
import type { LocalTrainOptions } from './train-local';
import { UsageError } from '../src/util/usage-error';

export { UsageError };

/**
 * Flags that set a job field, and the field: the range, the default and the help text are the job
 * schema's (src/schema/job.ts, src/schema/model.ts), so they are never restated here.
 */
export const JOB_FLAGS = {
  data: 'data.source',
  'max-bytes': 'data.maxBytes',
  batch: 'train.batch',
  lr: 'train.lr',
  'grad-clip': 'train.gradClip',
  seed: 'train.seed',
  context: 'model.context',
  embed: 'model.embed',
  hidden: 'model.hidden',
  layers: 'model.layers',
  heads: 'model.heads',
  width: 'model.width',
  rank: 'model.lowRank.rank',
  'lowrank-layers': 'model.lowRank.layers',
} as const;
type JobFlag = keyof typeof JOB_FLAGS;

/** The schema of a job field by its dotted path (model fields: that type's schema; undefined if it has none). */
export function jobFieldSchema(path: string, type: ModelSpec['type'] = 'gpt'): TSchema {
  const [section, ...rest] = path.split('.');
  let s: TSchema = section === 'model' ? (type === 'mlp' ? MlpSpec : GptSpec) : JobSpec.properties[section as 'train'];
  for (const key of rest) s = (s?.properties as Record<string, TSchema> | undefined)?.[key] as TSchema;
  return s;
}

/** The flag each model field comes from (errors from the model rules name the flag typed). */
const MODEL_FLAGS: Record<string, string> = {
  ...Object.fromEntries(
    Object.entries(JOB_FLAGS)
      .filter(([, path]) => path.startsWith('model.'))
      .map(([flag, path]) => [path, `--${flag}`]),
  ),
  'model.type': '--model',
  'model.tiedEmbeddings': '--tied/--untied',
  'model.lowRank': '--rank',
};

/** Usage lines of the flags that set job fields: range and default from the schema, then its description. */
export function jobFlagUsage(indent = '  '): string {
  const text = (s: TSchema) => {
    const def = (s.default ?? s.defaultText) as number | string | undefined;
    return `${s.patternText ?? describeSchema(s, undefined)}${def === undefined ? '' : ` (default ${def})`}`;
  };
  return Object.entries(JOB_FLAGS)
    .map(([flag, path]) => {
      const [gpt, mlp] = [jobFieldSchema(path, 'gpt'), jobFieldSchema(path, 'mlp')];
      // A model field of both types (context) has each type's range and default.
      const range = !gpt || gpt === mlp ? text(mlp) : !mlp ? text(gpt) : `MLP ${text(mlp)}, GPT ${text(gpt)}`;
      return `${indent}--${flag}: ${range}; ${(gpt ?? mlp).description ?? path}`;
    })
    .join('\n');
}

function checkModel(model: Record<string, unknown>): ModelSpec {
  try {
    return parseJobSpec({ model }).model;
  } catch (e) {
    if (e instanceof JobSpecError) throw new UsageError(`${MODEL_FLAGS[e.field] ?? e.field}: ${e.message}`);
    throw e;
  }
}

const STRING_FLAGS = [
  ...(Object.keys(JOB_FLAGS) as JobFlag[]),
  ...([
    'model',
    'steps',
    'warmup',
    'lowrank-at',
    'eval-every',
    'log-every',
    'eval-tokens',
    'out',
    'sample-tokens',
  ] as const),
];

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
    if (!Number.isInteger(n) || n < lo || n > hi)
      throw new UsageError(`--${k} must be an integer in [${lo}, ${hi}], got "${s}"`);
    return n;
  };
  /** A job field's flag, checked against the field's schema; absent: the schema's default. */
  const field = <T extends number | string>(k: JobFlag, def?: T): T => {
    const s = flag(k);
    const schema = jobFieldSchema(JOB_FLAGS[k]);
    if (s === undefined) return (def ?? schema.default) as T;
    const value = schema.type === 'string' ? s : s.trim() === '' ? NaN : Number(s);
    const p = schemaProblem(schema, value);
    if (p?.kind === 'value') throw new UsageError(`--${k} must be ${p.expected}, got "${s}"`);
    return value as T;
  };
  // Model sizes are checked by the spec's rules (which name the limits), so only "is an integer" here.
  const size = (k: (typeof STRING_FLAGS)[number]) =>
    flag(k) === undefined ? undefined : int(k, 0, -Infinity, Infinity);

  const type = flag('model') ?? 'mlp';
  if (type !== 'mlp' && type !== 'gpt') throw new UsageError(`--model must be "mlp" or "gpt", got "${type}"`);
  if (v.tied && v.untied) throw new UsageError('--tied and --untied contradict each other; give one');
  const lowRankAt = size('lowrank-at');
  const rank = size('rank');
  const lowRankLayers = flag('lowrank-layers');
  if (v.cuttlefish && lowRankAt === undefined)
    throw new UsageError('--cuttlefish picks the rank at the switch to low rank; it needs --lowrank-at STEP');
  if (v.cuttlefish && rank !== undefined) throw new UsageError('--cuttlefish chooses the rank; leave out --rank');
  if (lowRankAt !== undefined && rank === undefined && !v.cuttlefish)
    throw new UsageError('--lowrank-at STEP needs the rank: --rank R or --cuttlefish');
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

  const steps = int('steps', 2000, 1, 10_000_000);
  const evalEvery = int('eval-every', 200, 1, 10_000_000);
  return {
    source: field<string>('data'),
    maxBytes: field<number>('max-bytes'),
    valFraction: JobSpec.properties.data.properties.valFraction.default as number,
    model,
    steps,
    batch: field<number>('batch'),
    lr: field<number>('lr'),
    warmup: int('warmup', Math.min(100, steps), 0, steps),
    minLrRatio: 0.1,
    weightDecay: JobSpec.properties.train.properties.weightDecay.default as number,
    gradClip: field<number>('grad-clip', DEFAULT_GRAD_CLIP[model.type]),
    evalEvery,
    logEvery: int('log-every', Math.ceil(evalEvery / 5), 0, 10_000_000),
    evalTargets: int('eval-tokens', 2048, 1, 10_000_000),
    seed: field<number>('seed'),
    ...(lowRankAt === undefined
      ? {}
      : { lowRankAt: { step: lowRankAt, rank: rank ?? 'cuttlefish', layers: layers as 'middle' | 'all' } }),
    out: flag('out') ?? 'model.safetensors',
    sampleTokens: int('sample-tokens', 200, 0, 100_000),
  };
}
