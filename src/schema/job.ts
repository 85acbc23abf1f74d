// The job spec, once: every field's type, limits, default and description. `JobSpecInput` is what a
// researcher may post (every field optional); `JobSpec` is the parsed, fully populated spec. The
// `train` object travels unchanged from the spec to the engine, the `job` message and the worker.
// Defaults that depend on other fields (gradClip per model type, the outer optimizer per localSteps
// and codec, downCodec = codec) carry a `defaultText` for the docs and are filled by parseJobSpec.
import { Type, type Static } from '@sinclair/typebox';
import { MAX_CODEC_NAME } from '../sync/job-codec';
import { ModelSpec, ModelSpecInput } from './model';

/** Largest corpus a job may use (also the file and upload size limit). */
export const MAX_CORPUS_BYTES = 32 * 1024 * 1024;

/** train.gradClip when the spec leaves it out: clipping at 1 is the GPT recipe (nanoGPT); the MLP never needed it. */
export const DEFAULT_GRAD_CLIP = { mlp: 0, gpt: 1 } as const;

const codec = (description: string, defaultText?: string) =>
  Type.String({
    minLength: 1,
    maxLength: MAX_CODEC_NAME,
    description,
    ...(defaultText ? { defaultText } : { default: 'topk:0.04/q2' }),
  });

export const JobName = Type.String({
  minLength: 1,
  maxLength: 80,
  // \p{Cc} spelled out: TypeBox compiles patterns without the u flag.
  pattern: '^[^\\u0000-\\u001f\\u007f-\\u009f]*$',
  patternText: 'no control characters',
  default: 'job',
  description: 'Shown in the console and the checkpoints',
});

export const JobData = Type.Object(
  {
    source: Type.String({
      minLength: 1,
      maxLength: 4096,
      // `builtin:<name>`, `shared:<name>`, `file:<path>` or `upload:<id>`; corpus.ts resolves them.
      pattern: '^(builtin:cmudict|shared:[a-z0-9_-]{1,64}|file:[\\s\\S]+|upload:[A-Za-z0-9_-]{1,64})$',
      patternText: '"builtin:cmudict", "shared:<name>", "file:<path>" or "upload:<id>"',
      default: 'builtin:cmudict',
      description: 'The corpus',
    }),
    valFraction: Type.Number({
      exclusiveMinimum: 0,
      maximum: 0.5,
      default: 0.1,
      description: 'Share of the corpus held out for validation',
    }),
    maxBytes: Type.Integer({
      minimum: 1024,
      maximum: MAX_CORPUS_BYTES,
      default: 1_000_000,
      description: 'The corpus is cut to this many bytes',
    }),
  },
  { additionalProperties: false },
);
export type JobData = Static<typeof JobData>;

export const JobTrain = Type.Object(
  {
    rounds: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 20, description: 'Synchronous rounds' }),
    localSteps: Type.Integer({
      minimum: 1,
      maximum: 10_000,
      default: 10,
      description: 'Inner steps per round on each donor (H)',
    }),
    batch: Type.Integer({
      minimum: 1,
      maximum: 4096,
      default: 64,
      description: 'Examples per local step: context windows (MLP) or sequences of model.context tokens (GPT)',
    }),
    lr: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 3e-3, description: 'Inner AdamW learning rate' }),
    weightDecay: Type.Number({ minimum: 0, maximum: 1, default: 0, description: 'Inner AdamW weight decay' }),
    beta1: Type.Number({ minimum: 0, exclusiveMaximum: 1, default: 0.9, description: 'Inner AdamW β1' }),
    beta2: Type.Number({ minimum: 0, exclusiveMaximum: 1, default: 0.999, description: 'Inner AdamW β2' }),
    eps: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 1e-8, description: 'Inner AdamW ε' }),
    gradClip: Type.Number({
      minimum: 0,
      maximum: 1000,
      defaultText: '1 for a GPT, 0 for the MLP',
      description: 'Global gradient-norm clip on the donors (0: off)',
    }),
    roundDeadlineMs: Type.Integer({
      minimum: 1000,
      maximum: 3_600_000,
      default: 30_000,
      description: 'Milliseconds a donor has for its update',
    }),
    minDonors: Type.Integer({ minimum: 1, maximum: 10_000, default: 1, description: 'Ready donors a round waits for' }),
    shards: Type.Integer({ minimum: 1, maximum: 65_536, default: 8, description: 'Training data shards' }),
    seed: Type.Integer({ minimum: 0, maximum: 0xffffffff, default: 1, description: 'Initialisation and sampling seed' }),
    outerLr: Type.Number({
      exclusiveMinimum: 0,
      maximum: 10,
      defaultText: '0.7 (DiLoCo) when localSteps > 1 with a dense codec, else 1',
      description: 'Outer learning rate on the coordinator',
    }),
    outerMomentum: Type.Number({
      minimum: 0,
      exclusiveMaximum: 1,
      defaultText: '0.9 (DiLoCo) when localSteps > 1 with a dense codec, else 0',
      description: 'Outer Nesterov momentum (0: plain averaging)',
    }),
    codec: codec("The donors' update codec (docs/COMPRESSION.md grammar, e.g. \"q4\", \"topk:0.01/q2\")"),
    downCodec: codec("The broadcast's codec", 'the same as codec'),
    errorDecay: Type.Number({
      minimum: 0,
      maximum: 1,
      default: 1,
      description: "Donors' error-feedback decay: 1 classic, below 1 a leaky residual",
    }),
  },
  { additionalProperties: false },
);
/** The training settings: the spec's, the engine's, the `job` message's and the worker's. */
export type JobTrain = Static<typeof JobTrain>;

/** The parsed job spec: every field present. */
export const JobSpec = Type.Object(
  { name: JobName, model: ModelSpec, data: JobData, train: JobTrain },
  { additionalProperties: false },
);
export type JobSpec = Static<typeof JobSpec>;

/** What a researcher may post: every field optional; absent ones take their defaults. */
export const JobSpecInput = Type.Object(
  {
    name: Type.Optional(JobName),
    model: Type.Optional(ModelSpecInput),
    data: Type.Optional(Type.Partial(JobData, { additionalProperties: false, default: {} })),
    train: Type.Optional(Type.Partial(JobTrain, { additionalProperties: false, default: {} })),
  },
  { additionalProperties: false },
);
export type JobSpecInput = Static<typeof JobSpecInput>;
