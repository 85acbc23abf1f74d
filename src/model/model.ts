// One facade over the model families (the char-level MLP and the GPT), so the worker, the
// coordinator and the CLI never switch on the model type by hand. A ModelConfig is the family's
// own config tagged with `type`; every function here dispatches on that tag.
//
// The families differ in what one training example is: the MLP predicts one target per window of
// `context` tokens (targets has B entries), the GPT predicts at every position of a sequence of
// `context` tokens (targets has B × context entries, the tokens shifted by one). Batches, losses and
// tokens-per-step below account for that; callers only pass `batch` (windows or sequences).
import {
  mlpFlopsPerToken,
  mlpInit,
  mlpParamCount,
  mlpParamSpecs,
  validateMlpConfig,
  type MlpConfig,
  type ParamSpec,
} from './mlp-spec';
import { mlpLogits, mlpLoss } from './mlp-cpu';
import { MlpTrainer } from './mlp-gpu';
import {
  GPT_LIMITS,
  gptFlopsPerToken,
  gptInit,
  gptParamCount,
  gptParamSpecs,
  validateGptConfig,
  type GptConfig,
} from './gpt-spec';
import { gptLogits, gptLoss } from './gpt-cpu';
import { GptTrainer } from './gpt-gpu';
import { generate, type SampleOptions } from './sample';
import type { AdamWHyper, TrainerOptions } from './trainer-core';
import { ATTENTION_MAX_HEAD_SIZE } from '../gpu/kernels/attention';
import { evalSequences, evalWindows, sampleBatch, sampleSequences, type Batch } from '../data/split';
import type { Rng } from '../util/rng';
import { schemaProblem } from '../schema/check';
import {
  MODEL_CONFIGS,
  type GptModelConfig,
  type MlpModelConfig,
  type ModelConfig,
  type ModelType,
} from '../schema/model';

export type { ParamSpec, Batch, AdamWHyper, TrainerOptions, MlpConfig, GptConfig };

export type { MlpModelConfig, GptModelConfig, ModelConfig, ModelType };
export const MODEL_TYPES: readonly ModelType[] = ['mlp', 'gpt'];

/** What the worker and the CLI need of a GPU trainer; MlpTrainer and GptTrainer both satisfy it. */
export interface Trainer {
  readonly paramCount: number;
  setParams(flat: Float32Array): void;
  getParams(): Promise<Float32Array>;
  /** Mean loss over the batch, forward only. */
  loss(tokens: Int32Array, targets: Int32Array): Promise<number>;
  /** Loss and the raw (unclipped) gradient in the flat layout. */
  forwardBackward(tokens: Int32Array, targets: Int32Array): Promise<{ loss: number; grads: Float32Array }>;
  /** One AdamW step (after gradient clipping, when on); returns the batch's loss before the step. */
  step(tokens: Int32Array, targets: Int32Array, hp: AdamWHyper): Promise<number>;
  /** `count` steps on the batches `next(s)` returns, with one GPU round trip per 256 steps; the per-step losses. */
  steps(count: number, next: (step: number) => Batch, hp: AdamWHyper): Promise<Float32Array>;
  /** Forgets the AdamW moments and step count. */
  resetOptimizer(): void;
  /** The flat θ_base, θ_local and residual buffers a GpuUpdateEncoder (src/sync/gpu-encoder.ts) works on. */
  updateBuffers(): { base: GPUBuffer; local: GPUBuffer; residual: GPUBuffer };
  /** Records the copy of the padded local weights into the flat `local` buffer of updateBuffers(). */
  recordFlattenLocal(enc: GPUCommandEncoder): void;
  gpuBytes(): number;
  destroy(): void;
}

function unknownType(cfg: { type?: unknown }): never {
  throw new RangeError(
    `model.type must be one of ${MODEL_TYPES.map((t) => `"${t}"`).join(', ')}, got ${JSON.stringify(cfg.type)}`,
  );
}

/**
 * Checks the config against the family's limits (errors name `model.<field>`), plus what the GPU
 * trainers can run: a GPT's head size (width / heads) is at most the attention kernel's limit.
 */
export function validateModel(cfg: ModelConfig): void {
  if (cfg === null || typeof cfg !== 'object')
    throw new RangeError(`model must be an object, got ${JSON.stringify(cfg)}`);
  switch (cfg.type) {
    case 'mlp':
      return validateMlpConfig(cfg);
    case 'gpt': {
      validateGptConfig(cfg);
      const hs = cfg.width / cfg.heads;
      if (hs > ATTENTION_MAX_HEAD_SIZE) {
        throw new RangeError(
          `model.heads: head size model.width / model.heads = ${hs} is over the ` +
            `attention kernel's limit of ${ATTENTION_MAX_HEAD_SIZE}; use more heads`,
        );
      }
      return;
    }
    default:
      unknownType(cfg);
  }
}

/**
 * A ModelConfig from untrusted JSON (a checkpoint's metadata): the family's schema (its fields and no
 * others, each in range), then validateModel. Returns a fresh object.
 */
export function parseModelConfig(v: unknown): ModelConfig {
  if (v === null || typeof v !== 'object' || Array.isArray(v))
    throw new RangeError(`model must be an object, got ${JSON.stringify(v)}`);
  const o = v as Record<string, unknown>;
  if (o.type !== 'mlp' && o.type !== 'gpt') unknownType(o);
  const p = schemaProblem(MODEL_CONFIGS[o.type], o, 'model');
  if (p?.kind === 'unknown') {
    const scope = p.path === 'model' ? ` for model.type "${o.type}"` : '';
    throw new RangeError(`unknown field "${p.path}.${p.fields[0]}"${scope} (allowed: ${p.allowed.join(', ')})`);
  }
  if (p) {
    const got = p.kind === 'value' ? JSON.stringify(p.value) : 'undefined';
    throw new RangeError(`${p.path} must be ${p.expected}, got ${got}`);
  }
  const cfg = structuredClone(o) as ModelConfig;
  validateModel(cfg);
  return cfg;
}

/** Flat parameter layout (names, PyTorch shapes, offsets). */
export function modelParamSpecs(cfg: ModelConfig): ParamSpec[] {
  switch (cfg.type) {
    case 'mlp':
      return mlpParamSpecs(cfg);
    case 'gpt':
      return gptParamSpecs(cfg);
    default:
      unknownType(cfg);
  }
}

export function modelParamCount(cfg: ModelConfig): number {
  switch (cfg.type) {
    case 'mlp':
      return mlpParamCount(cfg);
    case 'gpt':
      return gptParamCount(cfg);
    default:
      unknownType(cfg);
  }
}

/** Seeded initial weights (the family's own init: PyTorch-like for the MLP, GPT-2 for the GPT). */
export function modelInit(cfg: ModelConfig, seed: number): Float32Array {
  switch (cfg.type) {
    case 'mlp':
      return mlpInit(cfg, seed);
    case 'gpt':
      return gptInit(cfg, seed);
    default:
      unknownType(cfg);
  }
}

/**
 * Forward FLOPs per trained (predicted) token, multiply-adds counted as 2; a training step costs
 * about 3× this per token. The GPT's attention term is for full-context sequences (how it trains).
 */
export function modelFlopsPerToken(cfg: ModelConfig): number {
  switch (cfg.type) {
    case 'mlp':
      return mlpFlopsPerToken(cfg);
    case 'gpt':
      return gptFlopsPerToken(cfg);
    default:
      unknownType(cfg);
  }
}

/** Predicted tokens in one step of `batch` examples: batch windows (MLP), batch × context (GPT). */
export function modelTokensPerStep(cfg: ModelConfig, batch: number): number {
  return cfg.type === 'gpt' ? batch * cfg.context : batch;
}

/** `batch` random training examples from a token stream: windows (MLP) or sequences (GPT). */
export function modelSampleBatch(cfg: ModelConfig, tokens: Int32Array, batch: number, rng: Rng): Batch {
  return cfg.type === 'gpt'
    ? sampleSequences(tokens, cfg.context, batch, rng)
    : sampleBatch(tokens, cfg.context, batch, rng);
}

/**
 * A fixed evaluation set of about `maxTargets` predicted tokens, evenly spread over the stream:
 * that many windows (MLP), or maxTargets / context sequences (GPT, at least one).
 */
export function modelEvalBatch(cfg: ModelConfig, tokens: Int32Array, maxTargets: number): Batch {
  if (!Number.isInteger(maxTargets) || maxTargets < 1)
    throw new RangeError(`maxTargets must be an integer >= 1, got ${maxTargets}`);
  return cfg.type === 'gpt'
    ? evalSequences(tokens, cfg.context, Math.max(1, Math.floor(maxTargets / cfg.context)))
    : evalWindows(tokens, cfg.context, maxTargets);
}

/** Mean cross-entropy over every target of a batch from modelSampleBatch/modelEvalBatch, on the CPU. */
export function modelLoss(cfg: ModelConfig, params: Float32Array, batch: Batch): number {
  switch (cfg.type) {
    case 'mlp':
      return mlpLoss(cfg, params, batch.tokens, batch.targets);
    case 'gpt': {
      const B = batch.tokens.length / cfg.context;
      if (!Number.isInteger(B) || B < 1) {
        throw new RangeError(
          `a GPT batch holds whole sequences of ${cfg.context} tokens (the context), got ${batch.tokens.length} tokens`,
        );
      }
      return gptLoss(cfg, params, batch.tokens, batch.targets, B);
    }
    default:
      unknownType(cfg);
  }
}

/**
 * Logits of the token after `context`, on the CPU. Only the last cfg.context tokens are used. The
 * MLP needs at least cfg.context tokens (modelGenerate pads a short prompt); the GPT at least one.
 */
export function modelNextLogits(cfg: ModelConfig, params: Float32Array, context: Int32Array): Float64Array {
  const ctx = context.subarray(Math.max(0, context.length - cfg.context));
  switch (cfg.type) {
    case 'mlp':
      if (ctx.length < cfg.context) {
        throw new RangeError(
          `the MLP predicts from exactly ${cfg.context} tokens (model.context), got ${ctx.length}; pad the prompt`,
        );
      }
      return mlpLogits(cfg, params, ctx);
    case 'gpt': {
      if (ctx.length < 1) throw new RangeError('the GPT needs at least one token of context, got none');
      const V = cfg.vocab;
      return gptLogits(cfg, params, ctx, 1).subarray((ctx.length - 1) * V, ctx.length * V);
    }
    default:
      unknownType(cfg);
  }
}

/**
 * Generates `count` tokens after `prompt` on the CPU (greedy at temperature 0, else sampled; seeded).
 * A prompt too short for the model is padded on the left with `pad` (the MLP needs context tokens,
 * the GPT one); the padding is not part of the result. Returns only the new tokens.
 */
export async function modelGenerate(
  cfg: ModelConfig,
  params: Float32Array,
  prompt: Int32Array,
  count: number,
  opts: SampleOptions & { seed: number },
  pad: number,
): Promise<Int32Array> {
  if (!Number.isInteger(pad) || pad < 0 || pad >= cfg.vocab)
    throw new RangeError(`pad token ${pad} is outside the vocabulary [0, ${cfg.vocab})`);
  const need = cfg.type === 'mlp' ? cfg.context : 1;
  const start = new Int32Array(Math.max(need, prompt.length)).fill(pad);
  start.set(prompt, start.length - prompt.length);
  const out = await generate((ctx) => modelNextLogits(cfg, params, ctx), start, count, cfg.context, opts);
  return out.subarray(start.length);
}

/** The GPU trainer for this model: `batch` windows (MLP) or sequences of cfg.context tokens (GPT) per step. */
export async function createTrainer(
  device: GPUDevice,
  cfg: ModelConfig,
  batch: number,
  opts: TrainerOptions = {},
): Promise<Trainer> {
  validateModel(cfg);
  switch (cfg.type) {
    case 'mlp':
      return MlpTrainer.create(device, cfg, batch, opts);
    case 'gpt':
      return GptTrainer.create(device, cfg, batch, opts);
    default:
      unknownType(cfg);
  }
}

/** One line for logs: family, shape and parameter count. */
export function describeModel(cfg: ModelConfig): string {
  const n = modelParamCount(cfg).toLocaleString('en-US');
  if (cfg.type === 'mlp')
    return `MLP context ${cfg.context}, embed ${cfg.embed}, hidden ${cfg.hidden}, vocab ${cfg.vocab}: ${n} params`;
  const lr = cfg.lowRank ? `, low rank ${cfg.lowRank.rank} (${cfg.lowRank.layers ?? 'middle'} blocks)` : '';
  return (
    `GPT ${cfg.layers} layers × width ${cfg.width}, ${cfg.heads} heads, context ${cfg.context}, vocab ${cfg.vocab}, ` +
    `${cfg.tiedEmbeddings ? 'tied' : 'untied'} embeddings${lr}: ${n} params`
  );
}

export { GPT_LIMITS, ATTENTION_MAX_HEAD_SIZE };
