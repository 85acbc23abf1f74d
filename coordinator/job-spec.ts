// A job is data, never code: the researcher posts JSON, and this module turns it into a fully
// populated JobSpec or throws a JobSpecError naming the field, the problem and the allowed range.
// Unknown fields are rejected so that a typo (`learningRate`) cannot silently fall back to a default.
// The model section depends on model.type: each family has its own fields and defaults, and a field
// of the other family is refused with a message saying which type it needs.
import { GPT_LIMITS, validateModel, type ModelConfig } from '../src/model/model';
import { checkCodecName, MAX_CODEC_NAME } from '../src/sync/job-codec';
import { defaultOuter } from '../src/sync/outer';

export interface MlpModelSpec {
  type: 'mlp';
  context: number;
  embed: number;
  hidden: number;
}

export interface GptModelSpec {
  type: 'gpt';
  context: number;
  layers: number;
  heads: number;
  width: number;
  tiedEmbeddings: boolean;
  /** Present only for a low-rank (Pufferfish) model. */
  lowRank?: { rank: number; layers: 'middle' | 'all' };
}

/** The vocabulary size comes from the data, so it is not part of the spec. */
export type ModelSpec = MlpModelSpec | GptModelSpec;

export interface JobSpec {
  name: string;
  model: ModelSpec;
  data: { source: string; valFraction: number; maxBytes: number };
  train: {
    rounds: number;
    localSteps: number;
    /** Examples per local step: context windows (MLP) or sequences of model.context tokens (GPT). */
    batch: number;
    lr: number;
    weightDecay: number;
    beta1: number;
    beta2: number;
    /** Global gradient-norm clip on the donors (0: off). Default 1 for a GPT, 0 for the MLP. */
    gradClip: number;
    roundDeadlineMs: number;
    minDonors: number;
    shards: number;
    seed: number;
    /**
     * Outer learning rate and Nesterov momentum on the coordinator. Defaults: DiLoCo's 0.7 and 0.9
     * when localSteps > 1, plain averaging (1 and 0) at localSteps = 1 (synchronous data parallel).
     */
    outerLr: number;
    outerMomentum: number;
    /** The donors' update codec (src/compress/codec-spec.ts grammar, e.g. "q4", "topk:0.01/q2"). */
    codec: string;
    /** The broadcast's codec; default: the same as codec. */
    downCodec: string;
    /** Donors' error-feedback decay: 1 classic, below 1 a leaky residual (sparse DiLoCo, SparseLoCo). */
    errorDecay: number;
  };
}

export class JobSpecError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'JobSpecError';
  }
}

/** Small enough to train on software GPUs (SwiftShader/lavapipe) in CI. */
export const DEFAULT_MLP_MODEL: MlpModelSpec = deepFreeze({ type: 'mlp', context: 8, embed: 16, hidden: 128 });

/**
 * The defaults of `{"model": {"type": "gpt"}}`: a small GPT (about 0.1 M parameters on a
 * character vocabulary) that a laptop GPU trains in minutes.
 */
export const DEFAULT_GPT_MODEL: GptModelSpec = deepFreeze({ type: 'gpt', context: 32, layers: 2, heads: 2, width: 64, tiedEmbeddings: true });

/** train.gradClip when the spec leaves it out: clipping at 1 is the GPT recipe (nanoGPT); the MLP never needed it. */
export const DEFAULT_GRAD_CLIP = { mlp: 0, gpt: 1 } as const satisfies Record<ModelSpec['type'], number>;

export const DEFAULT_JOB: JobSpec = deepFreeze({
  name: 'job',
  model: DEFAULT_MLP_MODEL,
  data: { source: 'builtin:cmudict', valFraction: 0.1, maxBytes: 1_000_000 },
  train: {
    rounds: 20,
    localSteps: 10,
    batch: 64,
    lr: 3e-3,
    weightDecay: 0,
    beta1: 0.9,
    beta2: 0.999,
    gradClip: DEFAULT_GRAD_CLIP.mlp,
    roundDeadlineMs: 30_000,
    minDonors: 1,
    shards: 8,
    seed: 1,
    // The compression benchmark's best arm (docs/BENCHMARKS.md, "compression"): DiLoCo with H = 10,
    // top-k 4% with 2-bit values both ways, outer lr 1 without momentum (defaultOuter for top-k).
    outerLr: 1,
    outerMomentum: 0,
    codec: 'topk:0.04/q2',
    downCodec: 'topk:0.04/q2',
    errorDecay: 1,
  },
});

/** Ids of jobs and uploads: safe in URLs and file names. */
export const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** Largest corpus a job may use (also the file and upload size limit). */
export const MAX_CORPUS_BYTES = 32 * 1024 * 1024;

// `builtin:<name>`, `shared:<name>`, `file:<path>` or `upload:<id>`; corpus.ts resolves them.
const SOURCE_RE = /^(builtin:cmudict|shared:[a-z0-9_-]{1,64}|file:.+|upload:[A-Za-z0-9_-]{1,64})$/s;

type Rule =
  | { kind: 'int'; lo: number; hi: number }
  | { kind: 'bool' }
  | { kind: 'num'; lo: number; hi: number; loOpen?: boolean; hiOpen?: boolean }
  | { kind: 'enum'; values: readonly string[] }
  | { kind: 'string'; min: number; max: number; pattern?: RegExp; patternText?: string }
  | { kind: 'codec' };

const MODEL_TYPE: Rule = { kind: 'enum', values: ['mlp', 'gpt'] };
const gptInt = (k: keyof typeof GPT_LIMITS): Rule => ({ kind: 'int', lo: GPT_LIMITS[k][0], hi: GPT_LIMITS[k][1] });

const MODEL_RULES: { mlp: Record<keyof MlpModelSpec, Rule>; gpt: Record<Exclude<keyof GptModelSpec, 'lowRank'>, Rule> } = {
  // Same limits as validateMlpConfig, checked here so the error names the spec field.
  mlp: {
    type: MODEL_TYPE,
    context: { kind: 'int', lo: 1, hi: 64 },
    embed: { kind: 'int', lo: 1, hi: 512 },
    hidden: { kind: 'int', lo: 1, hi: 4096 },
  },
  // GPT_LIMITS per field; the cross-field rules (heads divide width, rank ≤ width, …) are
  // validateGptConfig's, run once the section is parsed.
  gpt: {
    type: MODEL_TYPE,
    context: gptInt('context'),
    layers: gptInt('layers'),
    heads: gptInt('heads'),
    width: gptInt('width'),
    tiedEmbeddings: { kind: 'bool' },
  },
};

/** Every model field of each type (lowRank is an object of its own, parsed by parseLowRank). */
const MODEL_FIELDS = {
  mlp: Object.keys(MODEL_RULES.mlp),
  gpt: [...Object.keys(MODEL_RULES.gpt), 'lowRank'],
};

const LOW_RANK_RULES: Record<keyof NonNullable<GptModelSpec['lowRank']>, Rule> = {
  rank: { kind: 'int', lo: 1, hi: GPT_LIMITS.width[1] },
  layers: { kind: 'enum', values: ['middle', 'all'] },
};

const RULES: { [S in Exclude<keyof JobSpec, 'model'>]: JobSpec[S] extends object ? Record<keyof JobSpec[S], Rule> : Rule } = {
  name: { kind: 'string', min: 1, max: 80, pattern: /^[^\p{Cc}]*$/u, patternText: 'no control characters' },
  data: {
    source: {
      kind: 'string',
      min: 1,
      max: 4096,
      pattern: SOURCE_RE,
      patternText: '"builtin:cmudict", "shared:<name>", "file:<path>" or "upload:<id>"',
    },
    valFraction: { kind: 'num', lo: 0, hi: 0.5, loOpen: true },
    maxBytes: { kind: 'int', lo: 1024, hi: MAX_CORPUS_BYTES },
  },
  train: {
    rounds: { kind: 'int', lo: 1, hi: 1_000_000 },
    localSteps: { kind: 'int', lo: 1, hi: 10_000 },
    batch: { kind: 'int', lo: 1, hi: 4096 },
    lr: { kind: 'num', lo: 0, hi: 1, loOpen: true },
    weightDecay: { kind: 'num', lo: 0, hi: 1 },
    beta1: { kind: 'num', lo: 0, hi: 1, hiOpen: true },
    beta2: { kind: 'num', lo: 0, hi: 1, hiOpen: true },
    gradClip: { kind: 'num', lo: 0, hi: 1000 },
    roundDeadlineMs: { kind: 'int', lo: 1000, hi: 3_600_000 },
    minDonors: { kind: 'int', lo: 1, hi: 10_000 },
    shards: { kind: 'int', lo: 1, hi: 65_536 },
    seed: { kind: 'int', lo: 0, hi: 0xffffffff },
    outerLr: { kind: 'num', lo: 0, hi: 10, loOpen: true },
    outerMomentum: { kind: 'num', lo: 0, hi: 1, hiOpen: true },
    codec: { kind: 'codec' },
    downCodec: { kind: 'codec' },
    errorDecay: { kind: 'num', lo: 0, hi: 1 },
  },
};

function show(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  let s: string;
  try {
    s = JSON.stringify(v) ?? typeof v;
  } catch {
    s = typeof v;
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function checkValue(field: string, rule: Rule, v: unknown): unknown {
  switch (rule.kind) {
    case 'int':
      if (typeof v !== 'number' || !Number.isInteger(v) || v < rule.lo || v > rule.hi) {
        throw new JobSpecError(field, `${field} must be an integer in [${rule.lo}, ${rule.hi}], got ${show(v)}`);
      }
      return v;
    case 'bool':
      if (typeof v !== 'boolean') throw new JobSpecError(field, `${field} must be true or false, got ${show(v)}`);
      return v;
    case 'num': {
      const range = `${rule.loOpen ? '(' : '['}${rule.lo}, ${rule.hi}${rule.hiOpen ? ')' : ']'}`;
      const ok =
        typeof v === 'number' &&
        Number.isFinite(v) &&
        (rule.loOpen ? v > rule.lo : v >= rule.lo) &&
        (rule.hiOpen ? v < rule.hi : v <= rule.hi);
      if (!ok) throw new JobSpecError(field, `${field} must be a number in ${range}, got ${show(v)}`);
      return v;
    }
    case 'enum':
      if (typeof v !== 'string' || !rule.values.includes(v)) {
        throw new JobSpecError(field, `${field} must be one of ${rule.values.map((x) => `"${x}"`).join(', ')}, got ${show(v)}`);
      }
      return v;
    case 'string': {
      if (typeof v !== 'string' || v.length < rule.min || v.length > rule.max) {
        throw new JobSpecError(field, `${field} must be a string of ${rule.min}..${rule.max} characters, got ${show(v)}`);
      }
      if (rule.pattern && !rule.pattern.test(v)) {
        throw new JobSpecError(field, `${field} must be ${rule.patternText}, got ${show(v)}`);
      }
      return v;
    }
    case 'codec':
      try {
        return checkCodecName(v as string);
      } catch (e) {
        throw new JobSpecError(field, `${field}: ${(e as Error).message} (at most ${MAX_CODEC_NAME} characters)`);
      }
  }
}

function unknownField(prefix: string, key: string, allowed: string[], extra = ''): JobSpecError {
  return new JobSpecError(`${prefix}.${key}`, `unknown field "${prefix}.${key}"${extra} (allowed: ${allowed.join(', ')})`);
}

function requireObject(prefix: string, input: unknown): asserts input is Record<string, unknown> {
  if (!isPlainObject(input)) {
    throw new JobSpecError(prefix, `${prefix} must be an object, got ${Array.isArray(input) ? 'an array' : show(input)}`);
  }
}

function parseSection(prefix: string, input: unknown, rules: Record<string, Rule>, defaults: Record<string, unknown>) {
  requireObject(prefix, input);
  for (const key of Object.keys(input)) {
    if (!Object.hasOwn(rules, key)) throw unknownField(prefix, key, Object.keys(rules));
  }
  const out: Record<string, unknown> = {};
  for (const [key, rule] of Object.entries(rules)) {
    // A missing field takes its default; an explicit null does not (it is almost always a bug).
    out[key] = input[key] === undefined ? defaults[key] : checkValue(`${prefix}.${key}`, rule, input[key]);
  }
  return out;
}

function parseLowRank(input: unknown): GptModelSpec['lowRank'] {
  requireObject('model.lowRank', input);
  if (input.rank === undefined) throw new JobSpecError('model.lowRank.rank', 'model.lowRank.rank is required (the rank r of every factorised Linear, 1 ≤ r ≤ model.width)');
  return parseSection('model.lowRank', input, LOW_RANK_RULES, { layers: 'middle' }) as GptModelSpec['lowRank'];
}

/** The model section: its type picks the fields and defaults; a field of the other family is named as such. */
function parseModel(input: unknown): ModelSpec {
  requireObject('model', input);
  const type = (input.type === undefined ? DEFAULT_JOB.model.type : checkValue('model.type', MODEL_TYPE, input.type)) as ModelSpec['type'];
  const fields = MODEL_FIELDS[type];
  const other = type === 'mlp' ? 'gpt' : 'mlp';
  for (const key of Object.keys(input)) {
    if (fields.includes(key)) continue;
    if (MODEL_FIELDS[other].includes(key)) {
      throw new JobSpecError(
        `model.${key}`,
        `model.${key} is ${other === 'mlp' ? 'an MLP' : 'a GPT'} field; it needs model.type "${other}" (model.type is "${type}"; allowed: ${fields.join(', ')})`,
      );
    }
    throw unknownField('model', key, fields, ` for model.type "${type}"`);
  }
  const { lowRank, ...plain } = input;
  const defaults = (type === 'mlp' ? DEFAULT_MLP_MODEL : DEFAULT_GPT_MODEL) as unknown as Record<string, unknown>;
  const out = parseSection('model', plain, MODEL_RULES[type] as Record<string, Rule>, defaults);
  if (type === 'mlp') return out as unknown as MlpModelSpec;
  const gpt = out as unknown as GptModelSpec;
  if (lowRank !== undefined) gpt.lowRank = parseLowRank(lowRank);
  try {
    // Cross-field rules and the GPU kernels' limits; the vocabulary is only known once the data is.
    validateModel({ ...gpt, vocab: GPT_LIMITS.vocab[0] });
  } catch (e) {
    const msg = (e as Error).message;
    throw new JobSpecError(/^model\.[A-Za-z.]+/.exec(msg)?.[0] ?? 'model', msg);
  }
  return gpt;
}

/** Validates a posted job and fills in defaults; throws JobSpecError on the first problem. */
export function parseJobSpec(input: unknown): JobSpec {
  if (input === undefined) input = {};
  if (!isPlainObject(input)) {
    throw new JobSpecError('(root)', `job spec must be a JSON object, got ${Array.isArray(input) ? 'an array' : show(input)}`);
  }
  const sections = ['model', 'data', 'train'] as const;
  for (const key of Object.keys(input)) {
    if (key !== 'name' && !(sections as readonly string[]).includes(key)) {
      throw new JobSpecError(key, `unknown field "${key}" (allowed: name, ${sections.join(', ')})`);
    }
  }
  const name = input.name === undefined ? DEFAULT_JOB.name : (checkValue('name', RULES.name, input.name) as string);
  const model = parseModel(input.model === undefined ? {} : input.model);
  const section = <S extends 'data' | 'train'>(s: S, defaults: JobSpec[S]): JobSpec[S] =>
    parseSection(s, input[s] === undefined ? {} : input[s], RULES[s] as Record<string, Rule>, defaults as unknown as Record<string, unknown>) as JobSpec[S];
  return {
    name,
    model,
    data: section('data', DEFAULT_JOB.data),
    train: parseTrain(input.train === undefined ? {} : input.train, model.type),
  };
}

/** The train section: the outer optimizer's defaults follow localSteps, downCodec follows codec. */
function parseTrain(input: unknown, type: ModelSpec['type']): JobSpec['train'] {
  const t = parseSection('train', input, RULES.train as Record<string, Rule>, {
    ...DEFAULT_JOB.train,
    gradClip: DEFAULT_GRAD_CLIP[type],
  }) as JobSpec['train'];
  const given = input as Record<string, unknown>;
  const outer = defaultOuter(t.localSteps, t.codec);
  if (given.outerLr === undefined) t.outerLr = outer.lr;
  if (given.outerMomentum === undefined) t.outerMomentum = outer.momentum;
  if (given.downCodec === undefined) t.downCodec = t.codec;
  return t;
}

/** The model a job trains, once its vocabulary is known. */
export function jobModelConfig(model: ModelSpec, vocab: number): ModelConfig {
  return { ...model, vocab } as ModelConfig;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
