// Single-donor training on this machine's GPU (Node's WebGPU): the same trainers the donor's worker
// runs (MLP or GPT, through the model facade), driven step by step with a warmup + cosine
// learning-rate schedule, periodic validation, an optional switch to low rank mid-training
// (Pufferfish, with Cuttlefish's rank), a safetensors checkpoint and a text sample at the end.
// `starling train` is its CLI.
import { acquireNodeDevice } from '../src/gpu/node-device';
import {
  createTrainer,
  describeModel,
  modelEvalBatch,
  modelFlopsPerToken,
  modelInit,
  modelParamCount,
  modelSampleBatch,
  modelTokensPerStep,
  validateModel,
  type Batch,
  type GptModelConfig,
  type ModelConfig,
  type Trainer,
} from '../src/model/model';
import { convertToLowRank, gptCuttlefishRank, gptStableRanks } from '../src/model/lowrank';
import { CharTokenizer } from '../src/data/tokenizer';
import { splitTokens } from '../src/data/split';
import { lrAt, validateSchedule, type LrSchedule } from '../src/optim/schedule';
import { Rng } from '../src/util/rng';
import { loadCorpus } from '../coordinator/corpus';
import { modelMetadata, paramsToTensors, writeSafetensors } from '../coordinator/checkpoint';
import { jobModelConfig, type ModelSpec } from '../coordinator/job-spec';
import { sampleFromCheckpoint } from './sample-checkpoint';

/** Pufferfish's switch: train full rank for `step` steps, then factorise and train on at low rank. */
export interface LowRankSwitch {
  /** Steps trained at full rank before the conversion: 1 ≤ step < steps. */
  step: number;
  /** The rank of every factorised Linear, or 'cuttlefish' to choose it from the stable ranks at the switch. */
  rank: number | 'cuttlefish';
  /** Which blocks: 'middle' (all but the first and last; needs ≥ 3 layers) or 'all'. */
  layers: 'middle' | 'all';
}

export interface LocalTrainOptions {
  source: string;
  maxBytes: number;
  valFraction: number;
  /** The model without its vocabulary (the data gives it). */
  model: ModelSpec;
  steps: number;
  /** Windows (MLP) or sequences of model.context tokens (GPT) per step. */
  batch: number;
  lr: number;
  warmup: number;
  minLrRatio: number;
  weightDecay: number;
  /** Global gradient-norm clip (0: off). */
  gradClip: number;
  evalEvery: number;
  /** A progress line (train loss, lr, tok/s) every this many steps between evaluations (0 or absent: none). */
  logEvery?: number;
  /** Predicted tokens in the validation set (rounded down to whole batches, at least one). */
  evalTargets: number;
  seed: number;
  /** Switch a full-rank GPT to low rank during training. */
  lowRankAt?: LowRankSwitch;
  /** Where the safetensors checkpoint goes. */
  out: string;
  sampleTokens: number;
  log: (line: string) => void;
}

export interface LowRankReport {
  step: number;
  rank: number;
  layers: 'middle' | 'all';
  /** Cuttlefish's per-layer ranks, when it chose the rank. */
  perLayer?: { name: string; stableRank: number; rank: number }[];
  paramsBefore: number;
  paramsAfter: number;
  flopsPerTokenBefore: number;
  /** Validation loss just before and just after the factorisation (the truncation's cost). */
  valLossBefore: number;
  valLossAfter: number;
}

export interface LocalTrainResult {
  /** The final model (low rank after a switch). */
  model: ModelConfig;
  paramCount: number;
  /** Forward FLOPs per trained token of the final model (a training step is about 3× this). */
  flopsPerToken: number;
  steps: number;
  /** Predicted tokens trained on: steps × batch (MLP) or steps × batch × context (GPT). */
  tokens: number;
  initialValLoss: number;
  finalValLoss: number;
  /** Validation loss at step 0 and at every evaluation. */
  valLosses: { step: number; valLoss: number }[];
  tokensPerSecond: number;
  lowRank?: LowRankReport;
  gpuBytes: number;
  adapter: string;
  checkpoint: string;
  sample: string;
}

function checkOptions(o: LocalTrainOptions): LrSchedule {
  const schedule: LrSchedule = { base: o.lr, warmup: o.warmup, total: o.steps, minRatio: o.minLrRatio };
  validateSchedule(schedule);
  if (!Number.isInteger(o.evalEvery) || o.evalEvery < 1)
    throw new RangeError(`evalEvery must be an integer ≥ 1, got ${o.evalEvery}`);
  const logEvery = o.logEvery ?? 0;
  if (!Number.isInteger(logEvery) || logEvery < 0)
    throw new RangeError(`logEvery must be an integer ≥ 0 (0: off), got ${o.logEvery}`);
  if (!Number.isInteger(o.evalTargets) || o.evalTargets < 1)
    throw new RangeError(`evalTargets must be an integer ≥ 1, got ${o.evalTargets}`);
  if (!(Number.isFinite(o.gradClip) && o.gradClip >= 0))
    throw new RangeError(`gradClip must be a number ≥ 0 (0: off), got ${o.gradClip}`);
  const sw = o.lowRankAt;
  if (sw) {
    if (o.model.type !== 'gpt')
      throw new RangeError('lowRankAt (--lowrank-at) converts a GPT to low rank; the model is an MLP');
    if (o.model.lowRank)
      throw new RangeError(
        'lowRankAt (--lowrank-at) converts a full-rank GPT; the model is already low rank (model.lowRank)',
      );
    if (!Number.isInteger(sw.step) || sw.step < 1 || sw.step >= o.steps) {
      throw new RangeError(
        `lowRankAt.step (--lowrank-at) must be an integer in [1, ` +
          `${o.steps - 1}] (before the last step), got ${sw.step}`,
      );
    }
    if (sw.rank !== 'cuttlefish' && (!Number.isInteger(sw.rank) || sw.rank < 1 || sw.rank > o.model.width)) {
      throw new RangeError(
        `lowRankAt.rank (--rank) must be an integer in [1, ` +
          `${o.model.width}] (model.width) or 'cuttlefish', got ${sw.rank}`,
      );
    }
  }
  return schedule;
}

/**
 * Mean validation loss on the GPU: the trainer's forward over the set in chunks of its batch. The
 * set holds whole batches (see evalSet), so every target counts once and equally.
 */
async function evaluate(trainer: Trainer, cfg: ModelConfig, set: Batch, batch: number): Promise<number> {
  const rowTokens = cfg.context;
  const rowTargets = cfg.type === 'gpt' ? cfg.context : 1;
  const chunks = set.tokens.length / (batch * rowTokens);
  let sum = 0;
  for (let i = 0; i < chunks; i++) {
    const tokens = set.tokens.subarray(i * batch * rowTokens, (i + 1) * batch * rowTokens);
    const targets = set.targets.subarray(i * batch * rowTargets, (i + 1) * batch * rowTargets);
    sum += await trainer.loss(tokens, targets);
  }
  return sum / chunks;
}

/** The validation set: about `targets` predictions from `val`, rounded down to whole batches (at least one). */
function evalSet(cfg: ModelConfig, val: Int32Array, targets: number, batch: number): Batch {
  const rowTokens = cfg.context;
  const rowTargets = cfg.type === 'gpt' ? cfg.context : 1;
  const rows = Math.max(batch, Math.floor(targets / rowTargets / batch) * batch);
  const set = modelEvalBatch(cfg, val, rows * rowTargets);
  const have = set.tokens.length / rowTokens;
  if (have < batch) {
    throw new RangeError(
      `the validation split has only ${have} distinct ` +
        `${cfg.type === 'gpt' ? 'sequences' : 'windows'}, fewer than one batch (${batch}); ` +
        'use a smaller batch, a larger valFraction or more data',
    );
  }
  const keep = Math.floor(have / batch) * batch;
  return { tokens: set.tokens.subarray(0, keep * rowTokens), targets: set.targets.subarray(0, keep * rowTargets) };
}

export async function trainLocal(o: LocalTrainOptions): Promise<LocalTrainResult> {
  const schedule = checkOptions(o);
  const corpus = await loadCorpus(o.source, { maxBytes: o.maxBytes });
  const tok = CharTokenizer.fromText(corpus.text);
  let cfg = jobModelConfig(o.model, tok.vocab.length);
  validateModel(cfg);
  const { train, val } = splitTokens(tok.encode(corpus.text), o.valFraction, cfg.context);
  const valSet = evalSet(cfg, val, o.evalTargets, o.batch);
  const { device, adapterInfo } = await acquireNodeDevice();
  o.log(`${corpus.description}: ${train.length} train / ${val.length} val tokens, vocab ${cfg.vocab}`);
  o.log(
    `${describeModel(cfg)}; ${modelFlopsPerToken(cfg).toLocaleString('en-US')} FLOPs/token forward; ` +
      `${modelTokensPerStep(cfg, o.batch)} tokens/step; on ${adapterInfo}`,
  );
  let trainer = await createTrainer(device, cfg, o.batch, { gradClip: o.gradClip });
  try {
    let params = modelInit(cfg, o.seed);
    trainer.setParams(params);
    // Cuttlefish scales each layer's rank by its stable rank at init.
    const sw = o.lowRankAt;
    const initStableRanks =
      sw?.rank === 'cuttlefish' ? gptStableRanks(cfg as GptModelConfig, params, sw.layers) : undefined;
    const initialValLoss = await evaluate(trainer, cfg, valSet, o.batch);
    const valLosses = [{ step: 0, valLoss: initialValLoss }];
    o.log(`step     0  val ${initialValLoss.toFixed(4)}`);
    const rng = new Rng(o.seed ^ 0x5bd1e995);
    const hp = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: o.weightDecay };
    let lowRank: LowRankReport | undefined;
    let trainMs = 0;
    let tokens = 0;
    let lossSum = 0;
    let lossN = 0;
    let finalValLoss = initialValLoss;
    for (let step = 0; step < o.steps; step++) {
      if (sw && step === sw.step) {
        const before = cfg as GptModelConfig;
        const full = await trainer.getParams();
        const valLossBefore = await evaluate(trainer, cfg, valSet, o.batch);
        const chosen =
          sw.rank === 'cuttlefish' ? gptCuttlefishRank(before, full, { layers: sw.layers, initStableRanks }) : null;
        const rank = chosen ? chosen.rank : (sw.rank as number);
        const conv = convertToLowRank(before, full, rank, sw.layers);
        // A new trainer for the new shapes: its AdamW state starts fresh (the factors have none).
        trainer.destroy();
        cfg = { type: 'gpt', ...conv.cfg };
        trainer = await createTrainer(device, cfg, o.batch, { gradClip: o.gradClip });
        trainer.setParams(conv.params);
        const valLossAfter = await evaluate(trainer, cfg, valSet, o.batch);
        lowRank = {
          step,
          rank,
          layers: sw.layers,
          ...(chosen ? { perLayer: chosen.perLayer } : {}),
          paramsBefore: modelParamCount(before),
          paramsAfter: modelParamCount(cfg),
          flopsPerTokenBefore: modelFlopsPerToken(before),
          valLossBefore,
          valLossAfter,
        };
        o.log(
          `step ${String(step).padStart(5)}  low rank ` +
            `${rank}${chosen ? ' (Cuttlefish)' : ''} in ${sw.layers} blocks: ` +
            `params ${lowRank.paramsBefore} → ${lowRank.paramsAfter}, val ` +
            `${valLossBefore.toFixed(4)} → ${valLossAfter.toFixed(4)}; AdamW restarted`,
        );
      }
      const b = modelSampleBatch(cfg, train, o.batch, rng);
      const lr = lrAt(step, schedule);
      const t0 = performance.now();
      lossSum += await trainer.step(b.tokens, b.targets, { ...hp, lr });
      trainMs += performance.now() - t0;
      tokens += modelTokensPerStep(cfg, o.batch);
      lossN++;
      if ((step + 1) % o.evalEvery === 0 || step + 1 === o.steps) {
        finalValLoss = await evaluate(trainer, cfg, valSet, o.batch);
        valLosses.push({ step: step + 1, valLoss: finalValLoss });
        o.log(
          `step ${String(step + 1).padStart(5)}  val ` +
            `${finalValLoss.toFixed(4)}  train ${(lossSum / lossN).toFixed(4)}  ` +
            `lr ${lr.toExponential(2)}  ${(tokens / (trainMs / 1000)).toFixed(0)} tok/s`,
        );
        lossSum = 0;
        lossN = 0;
      } else if ((o.logEvery ?? 0) > 0 && (step + 1) % (o.logEvery ?? 1) === 0) {
        // Progress between evaluations: the mean train loss since the last evaluation.
        o.log(
          `step ${String(step + 1).padStart(5)}  train ${(lossSum / lossN).toFixed(4)}  ` +
            `lr ${lr.toExponential(2)}  ${(tokens / (trainMs / 1000)).toFixed(0)} tok/s`,
        );
      }
    }
    params = await trainer.getParams();
    if (!Number.isFinite(finalValLoss)) {
      throw new Error(
        `training diverged: validation loss is ${finalValLoss}; ` +
          `lower the learning rate or clip gradients (--grad-clip)`,
      );
    }
    await writeSafetensors(o.out, paramsToTensors(cfg, params), {
      format: 'pt',
      version: String(o.steps),
      model: modelMetadata(cfg),
      vocab: JSON.stringify(tok.vocab),
    });
    const tokensPerSecond = tokens / (trainMs / 1000);
    const flopsPerToken = modelFlopsPerToken(cfg);
    o.log(
      `done: ${describeModel(cfg)}; ${flopsPerToken.toLocaleString('en-US')} FLOPs/token forward; ` +
        `${tokensPerSecond.toFixed(0)} tok/s (≈ ` +
        `${((3 * flopsPerToken * tokensPerSecond) / 1e9).toFixed(2)} GFLOP/s training); ` +
        `val ${valLosses.map((v) => `${v.step}:${v.valLoss.toFixed(4)}`).join(' ')}`,
    );
    const sample =
      o.sampleTokens > 0
        ? (
            await sampleFromCheckpoint({
              checkpoint: o.out,
              prompt: '',
              tokens: o.sampleTokens,
              temperature: 0.8,
              seed: o.seed,
            })
          ).text
        : '';
    return {
      model: cfg,
      paramCount: modelParamCount(cfg),
      flopsPerToken,
      steps: o.steps,
      tokens,
      initialValLoss,
      finalValLoss,
      valLosses,
      tokensPerSecond,
      ...(lowRank ? { lowRank } : {}),
      gpuBytes: trainer.gpuBytes(),
      adapter: adapterInfo,
      checkpoint: o.out,
      sample,
    };
  } finally {
    trainer.destroy();
  }
}
