// A job is data, never code: the researcher posts JSON, and this module turns it into a fully
// populated JobSpec or throws a JobSpecError naming the field, the problem and the allowed range.
// The shapes, limits and defaults are the schema's (src/schema/job.ts); here are the rules that span
// fields, each in one place: the model type picks the model fields (a field of the other family is
// named as such), the GPT's cross-field rules, codec names, and the defaults that follow other fields.
import { Type, type TSchema } from '@sinclair/typebox';
import { validateModel, type ModelConfig } from '../src/model/model';
import { checkCodecName, MAX_CODEC_NAME } from '../src/compress/codec-spec';
import { aggregatorName, parseAggregator } from '../src/schema/aggregator';
import { defaultOuter } from '../src/sync/outer';
import { schemaProblem, withDefaults, type SchemaProblem } from '../src/schema/check';
import { DEFAULT_GRAD_CLIP, JobData, JobSpecInput, JobTrain, MAX_CORPUS_BYTES, type JobSpec } from '../src/schema/job';
import { GPT_LIMITS, GptSpec, MlpSpec, MODEL_SPEC_INPUTS, type ModelSpec } from '../src/schema/model';

export type { JobSpec, JobTrain } from '../src/schema/job';
export type { GptSpec as GptModelSpec, MlpSpec as MlpModelSpec, ModelSpec } from '../src/schema/model';
export { DEFAULT_GRAD_CLIP, MAX_CORPUS_BYTES };

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
export const DEFAULT_MLP_MODEL: MlpSpec = deepFreeze(withDefaults<MlpSpec>(MlpSpec, {}));

/**
 * The defaults of `{"model": {"type": "gpt"}}`: a small GPT (about 0.1 M parameters on a
 * character vocabulary) that a laptop GPU trains in minutes.
 */
export const DEFAULT_GPT_MODEL: GptSpec = deepFreeze(withDefaults<GptSpec>(GptSpec, {}));

export { ID_RE } from '../src/schema/id';

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
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** A schema problem in the spec's words: "x must be …, got …", unknown fields with the allowed ones. */
function specError(p: SchemaProblem, unknownSuffix = ''): JobSpecError {
  switch (p.kind) {
    case 'unknown': {
      const field = p.path ? `${p.path}.${p.fields[0]}` : p.fields[0];
      const extra = p.path === 'model' ? unknownSuffix : '';
      return new JobSpecError(field, `unknown field "${field}"${extra} (allowed: ${p.allowed.join(', ')})`);
    }
    case 'missing':
      return new JobSpecError(p.path, `${p.path} is required (${p.description})`);
    case 'value': {
      const got = p.expected === 'an object' && Array.isArray(p.value) ? 'an array' : show(p.value);
      return new JobSpecError(p.path, `${p.path} must be ${p.expected}, got ${got}`);
    }
  }
}

function check(schema: TSchema, value: unknown, root: string, unknownSuffix?: string): void {
  const p = schemaProblem(schema, value, root);
  if (p) throw specError(p, unknownSuffix);
}

/** The model section: its type picks the fields and defaults; a field of the other family is named as such. */
function parseModel(input: unknown): ModelSpec {
  if (!isPlainObject(input)) check(MlpSpec, input, 'model');
  const given = input as Record<string, unknown>;
  // An explicit null is an error, not the default (as for every field).
  const type = given.type === undefined ? 'mlp' : given.type;
  if (type !== 'mlp' && type !== 'gpt') {
    throw new JobSpecError('model.type', `model.type must be one of "mlp", "gpt", got ${show(type)}`);
  }
  const fields = Object.keys(MODEL_SPEC_INPUTS[type].properties);
  const other = type === 'mlp' ? 'gpt' : 'mlp';
  for (const key of Object.keys(given)) {
    if (!fields.includes(key) && Object.hasOwn(MODEL_SPEC_INPUTS[other].properties, key)) {
      throw new JobSpecError(
        `model.${key}`,
        `model.${key} is ${other === 'mlp' ? 'an MLP' : 'a GPT'} field; it needs model.type "${other}" ` +
          `(model.type is "${type}"; allowed: ${fields.join(', ')})`,
      );
    }
  }
  check(MODEL_SPEC_INPUTS[type], { ...given, type }, 'model', ` for model.type "${type}"`);
  if (type === 'mlp') return withDefaults<MlpSpec>(MlpSpec, given);
  const gpt = withDefaults<GptSpec>(GptSpec, given);
  try {
    // Cross-field rules and the GPU kernels' limits; the vocabulary is only known once the data is.
    validateModel({ ...gpt, vocab: GPT_LIMITS.vocab[0] });
  } catch (e) {
    const msg = (e as Error).message;
    throw new JobSpecError(/^model\.[A-Za-z.]+/.exec(msg)?.[0] ?? 'model', msg);
  }
  return gpt;
}

/** The root without its model section, which parseModel checks per model type. */
const ROOT = Type.Object(
  { ...JobSpecInput.properties, model: Type.Optional(Type.Unknown()) },
  { additionalProperties: false },
);

/** Validates a posted job and fills in defaults; throws JobSpecError on the first problem. */
export function parseJobSpec(input: unknown): JobSpec {
  if (input === undefined) input = {};
  if (!isPlainObject(input)) {
    throw new JobSpecError(
      '(root)',
      `job spec must be a JSON object, got ${Array.isArray(input) ? 'an array' : show(input)}`,
    );
  }
  // Problems in field order: unknown root fields and the name, then the model, then data and train.
  const rest = schemaProblem(ROOT, input);
  if (rest && !/^(data|train)\b/.test(rest.path)) throw specError(rest);
  const model = parseModel(input.model === undefined ? {} : input.model);
  if (rest) throw specError(rest);
  return {
    name: withDefaults<string>(JobSpecInput.properties.name, input.name),
    model,
    data: withDefaults<JobSpec['data']>(JobData, input.data ?? {}),
    train: parseTrain(input.train ?? {}, model.type),
  };
}

/** The train section's cross-field rules: canonical codec names, and defaults that follow other fields. */
function parseTrain(given: unknown, type: ModelSpec['type']): JobTrain {
  const t = withDefaults<Partial<JobTrain>>(JobTrain, given);
  const codecName = (field: 'codec' | 'downCodec', name: string): string => {
    try {
      return checkCodecName(name);
    } catch (e) {
      const msg = `train.${field}: ${(e as Error).message} (at most ${MAX_CODEC_NAME} characters)`;
      throw new JobSpecError(`train.${field}`, msg);
    }
  };
  const codec = codecName('codec', t.codec!);
  let aggregator: string;
  try {
    aggregator = aggregatorName(parseAggregator(t.aggregator!));
  } catch (e) {
    throw new JobSpecError('train.aggregator', (e as Error).message);
  }
  const outer = defaultOuter(t.localSteps!, codec);
  return {
    ...t,
    gradClip: t.gradClip ?? DEFAULT_GRAD_CLIP[type],
    outerLr: t.outerLr ?? outer.lr,
    outerMomentum: t.outerMomentum ?? outer.momentum,
    codec,
    downCodec: codecName('downCodec', t.downCodec ?? codec),
    aggregator,
  } as JobTrain;
}

export const DEFAULT_JOB: JobSpec = deepFreeze({ ...parseJobSpec({}), model: DEFAULT_MLP_MODEL });

/** The model a job trains, once its vocabulary is known. */
export function jobModelConfig(model: ModelSpec, vocab: number): ModelConfig {
  return { ...model, vocab };
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
