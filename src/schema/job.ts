// The job spec, once: every field's type, limits, default and description. `JobSpecInput` is what a
// researcher may post (every field optional); `JobSpec` is the parsed, fully populated spec. The
// `train` object travels unchanged from the spec to the engine, the `job` message and the worker.
// Defaults that depend on other fields (gradClip per model type, the outer optimizer per localSteps
// and codec, downCodec = codec) carry a `defaultText` for the docs and are filled by parseJobSpec.
import { Type, type Static } from '@sinclair/typebox';
import { MAX_CODEC_NAME } from '../compress/codec-spec';
import { AGGREGATOR_FORMS, AGGREGATOR_PATTERN } from './aggregator';
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
    allowedText: `a valid codec name of ≤ ${MAX_CODEC_NAME} characters`,
    // The compression benchmark's best arm (docs/BENCHMARKS.md): top-k 4% with 2-bit values.
    ...(defaultText ? { defaultText } : { default: 'topk:0.04/q2' }),
  });

export const JobName = Type.String({
  minLength: 1,
  maxLength: 80,
  // \p{Cc} spelled out: TypeBox compiles patterns without the u flag.
  pattern: '^[^\\u0000-\\u001f\\u007f-\\u009f]*$',
  patternText: 'no control characters',
  default: 'job',
  description: "a label shown in the console, the API and the checkpoint's metadata",
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
      description:
        'where the text comes from (see [Data sources](#data-sources)); a `file:` path must lie under ' +
        "the coordinator's data roots (its data directory and each `--data-root`)",
      allowedText:
        '`"builtin:cmudict"`, `"shared:<name>"` (`<name>`: 1..64 of `a-z 0-9 _ -`), `"file:<path>"` or ' +
        '`"upload:<id>"` (`<id>`: 1..64 of `A-Z a-z 0-9 _ -`); 1..4096 characters',
    }),
    valFraction: Type.Number({
      exclusiveMinimum: 0,
      maximum: 0.5,
      default: 0.1,
      description: 'share of the tokens held out for validation (the tail of the text)',
    }),
    maxBytes: Type.Integer({
      minimum: 1024,
      maximum: MAX_CORPUS_BYTES,
      default: 1_000_000,
      description: "cap on the text's UTF-8 size; longer texts are cut (see below)",
      allowedText: 'integer in [1024, 33554432] (32 MiB)',
    }),
  },
  { additionalProperties: false },
);
export type JobData = Static<typeof JobData>;

export const JobTrain = Type.Object(
  {
    rounds: Type.Integer({
      minimum: 1,
      maximum: 1_000_000,
      default: 20,
      description: 'rounds to run; the job is `done` after this many',
    }),
    localSteps: Type.Integer({
      minimum: 1,
      maximum: 10_000,
      default: 10,
      description: 'AdamW steps each donor runs per round',
    }),
    batch: Type.Integer({
      minimum: 1,
      maximum: 4096,
      default: 64,
      description:
        'examples per step: random context windows (MLP), or random sequences of `model.context` characters ' +
        '(GPT, so a step trains on batch × context predictions)',
    }),
    lr: Type.Number({
      exclusiveMinimum: 0,
      maximum: 1,
      default: 3e-3,
      description: "the donors' (inner) AdamW learning rate",
    }),
    weightDecay: Type.Number({ minimum: 0, maximum: 1, default: 0, description: 'AdamW decoupled weight decay' }),
    beta1: Type.Number({ minimum: 0, exclusiveMaximum: 1, default: 0.9, description: 'AdamW first-moment decay' }),
    beta2: Type.Number({ minimum: 0, exclusiveMaximum: 1, default: 0.999, description: 'AdamW second-moment decay' }),
    eps: Type.Number({
      exclusiveMinimum: 0,
      maximum: 1,
      default: 1e-8,
      description: "AdamW's ε (added to the root of the second moment)",
    }),
    gradClip: Type.Number({
      minimum: 0,
      maximum: 1000,
      defaultText: "`1` for a GPT (nanoGPT's recipe), `0` for the MLP (it never needed it)",
      description: 'the donors clip the global gradient norm to this before each AdamW step; `0` turns clipping off',
    }),
    roundDeadlineMs: Type.Integer({
      minimum: 1000,
      maximum: 3_600_000,
      default: 30_000,
      description: 'how long a round waits for updates (the round ends earlier once every assigned donor answered)',
    }),
    minDonors: Type.Integer({
      minimum: 1,
      maximum: 10_000,
      default: 1,
      description: 'ready donors needed before a round starts',
    }),
    shards: Type.Integer({
      minimum: 1,
      maximum: 65_536,
      default: 8,
      description:
        'pieces the training tokens are cut into; donors keep one shard each, given out 0, 1, 2, … in the ' +
        'order they join, wrapping around',
    }),
    seed: Type.Integer({
      minimum: 0,
      maximum: 0xffffffff,
      default: 1,
      description: "seed of the initial weights and of the donors' per-round batch sampling",
    }),
    outerLr: Type.Number({
      exclusiveMinimum: 0,
      maximum: 10,
      defaultText:
        '`1` at localSteps 1 or with a sparsifying codec (top-k, random-k, cocktail); `0.7` otherwise (DiLoCo)',
      description: 'outer learning rate: θ ← θ − outerLr · (mean Δ, with momentum if any)',
    }),
    outerMomentum: Type.Number({
      minimum: 0,
      exclusiveMaximum: 1,
      defaultText: '`0` at localSteps 1 or with a sparsifying codec; `0.9` otherwise',
      description:
        "Nesterov momentum of the outer step (DiLoCo); on the benchmark's GPT at H = 10, `0` with outerLr `1` " +
        'ended level with dense and the default 16.8% behind (docs/BENCHMARKS.md)',
    }),
    codec: codec(
      'how donors encode their update Δ = θ_v − θ_local (with ' +
        'error feedback): a codec name, `f32`, `f16`, `int8`, `q8`/`q4`/`q2`[`:sr`], `topk:F`[`/V`], ' +
        '`randomk:F`[`/V`], `cocktail`[`:F,F`], `powersgd:R`[`/V`] (docs/COMPRESSION.md, "Codec names")',
    ),
    downCodec: codec(
      'how the coordinator encodes the broadcast step (with its own error feedback)',
      'same as `train.codec`',
    ),
    errorDecay: Type.Number({
      minimum: 0,
      maximum: 1,
      default: 1,
      description:
        "the donors' error-feedback decay β: each round sends Δ + β·residual (1: classic error feedback; " +
        '< 1 a leaky residual as in SparseLoCo)',
    }),
    aggregator: Type.String({
      maxLength: 32,
      pattern: AGGREGATOR_PATTERN,
      patternText: AGGREGATOR_FORMS,
      allowedText: AGGREGATOR_FORMS,
      // Robust by default: one donor's update cannot move the weights by more than τ × the median norm / n.
      default: 'clipped-mean',
      description:
        "how the coordinator combines the round's decoded updates: the plain `mean`; `clipped-mean` (each " +
        "update's norm clipped to τ × the round's median norm, then the mean); coordinate-wise " +
        '`trimmed-mean:F` or `median` (docs/AGGREGATION.md: what each tolerates). Jobs stored before this ' +
        'field existed keep `mean`',
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
