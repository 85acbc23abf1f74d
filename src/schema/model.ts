// The model configs, once: the spec form a job names (no `vocab`: it comes from the data) and the
// config form with the vocabulary that the trainers, checkpoints and the `job` message carry. The
// per-field limits live here; the cross-field rules (heads divide width, lowRank.rank ≤ width, the
// attention kernel's head size) are validateGptConfig's and validateModel's (src/model).
import { Type, type Static, type TProperties } from '@sinclair/typebox';

/** Limits of the MLP's integer fields. */
export const MLP_LIMITS = {
  vocab: [2, 4096],
  context: [1, 64],
  embed: [1, 512],
  hidden: [1, 4096],
} as const satisfies Record<string, readonly [number, number]>;

/** Limits on each integer field of a GPT. */
export const GPT_LIMITS = {
  vocab: [2, 65536],
  context: [1, 4096],
  layers: [1, 96],
  heads: [1, 128],
  width: [1, 8192],
} as const satisfies Record<string, readonly [number, number]>;

const int = ([minimum, maximum]: readonly [number, number], def: number | undefined, description: string) =>
  Type.Integer({ minimum, maximum, ...(def === undefined ? {} : { default: def }), description });

const mlpFields = {
  type: Type.Literal('mlp', { default: 'mlp', description: 'the model family', allowedText: '`"mlp"` or `"gpt"`' }),
  context: int(MLP_LIMITS.context, 8, 'characters of context the model sees'),
  embed: int(MLP_LIMITS.embed, 16, 'embedding width per character'),
  hidden: int(MLP_LIMITS.hidden, 128, 'hidden layer width'),
};

export const GptLowRank = Type.Object(
  {
    rank: Type.Integer({
      minimum: 1,
      maximum: GPT_LIMITS.width[1],
      description: 'the rank r of every factorised Linear, 1 ≤ r ≤ model.width',
    }),
    layers: Type.Optional(
      Type.Union([Type.Literal('middle'), Type.Literal('all')], {
        default: 'middle',
        description: "'middle' (Pufferfish): all blocks but the first and last; 'all': every block",
      }),
    ),
  },
  {
    additionalProperties: false,
    description: 'low-rank (Pufferfish) block Linears `W = U·Vᵀ`; absent: full rank',
    defaultText: 'absent',
    allowedText:
      '`{ "rank": r, "layers": "middle" \\| "all" }`: `rank` an integer in [1, width]; `layers` default `"middle"` ' +
      '(every block but the first and last, needs `layers` ≥ 3) or `"all"`',
  },
);
export type GptLowRank = Static<typeof GptLowRank>;

const gptFields = {
  type: Type.Literal('gpt', { default: 'gpt', description: 'the model family' }),
  context: int(GPT_LIMITS.context, 32, 'sequence length (block size)'),
  layers: int(GPT_LIMITS.layers, 2, 'transformer blocks'),
  heads: Type.Integer({
    minimum: GPT_LIMITS.heads[0],
    maximum: GPT_LIMITS.heads[1],
    default: 2,
    description: 'attention heads per block',
    allowedText:
      "integer in [1, 128]; must divide `width`, and `width / heads` ≤ 128 (the attention kernel's head size limit)",
  }),
  width: int(GPT_LIMITS.width, 64, 'residual stream width (n_embd)'),
  tiedEmbeddings: Type.Boolean({
    default: true,
    description: "the output head shares the token embedding's weights (GPT-2)",
  }),
  lowRank: Type.Optional(GptLowRank),
};

const closed = <P extends TProperties>(p: P) => Type.Object(p, { additionalProperties: false });

/** An MLP as a job specifies it (the vocabulary comes from the data). */
export const MlpSpec = closed(mlpFields);
export type MlpSpec = Static<typeof MlpSpec>;
/** A GPT as a job specifies it. */
export const GptSpec = closed(gptFields);
export type GptSpec = Static<typeof GptSpec>;
export const ModelSpec = Type.Union([MlpSpec, GptSpec]);
export type ModelSpec = Static<typeof ModelSpec>;

/** What a job may post per model type: every field optional (defaults from the schema). */
export const MlpSpecInput = Type.Partial(MlpSpec, { additionalProperties: false });
export const GptSpecInput = Type.Partial(GptSpec, { additionalProperties: false });
export const ModelSpecInput = Type.Union([MlpSpecInput, GptSpecInput], {
  default: {},
  description: 'The model; model.type ("mlp" or "gpt", default "mlp") picks the other fields',
});
export const MODEL_SPEC_INPUTS = { mlp: MlpSpecInput, gpt: GptSpecInput } as const;

/** A whole model with its vocabulary size: what trainers, checkpoints and the `job` message use. */
// vocab second, after type: the order checkpoint metadata and error messages list the fields in.
const { type: mlpType, ...mlpSizes } = mlpFields;
const { type: gptType, ...gptSizes } = gptFields;
export const MlpModelConfig = closed({
  type: mlpType,
  vocab: int(MLP_LIMITS.vocab, undefined, 'Vocabulary size'),
  ...mlpSizes,
});
export type MlpModelConfig = Static<typeof MlpModelConfig>;
export const GptModelConfig = closed({
  type: gptType,
  vocab: int(GPT_LIMITS.vocab, undefined, 'Vocabulary size'),
  ...gptSizes,
});
export type GptModelConfig = Static<typeof GptModelConfig>;
export const ModelConfig = Type.Union([MlpModelConfig, GptModelConfig]);
export type ModelConfig = Static<typeof ModelConfig>;
export const MODEL_CONFIGS = { mlp: MlpModelConfig, gpt: GptModelConfig } as const;
export type ModelType = ModelConfig['type'];
