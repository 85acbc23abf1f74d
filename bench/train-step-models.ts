// The models `npm run bench -- train-step` times: one entry per (model, batch). Pure data, shared by
// the Node driver (bench/train-step.ts) and the page (bench/page/train-step-page.ts).
//
// Adding a model kind: add an interface to the `TrainStepModel` union with a case in `tokensPerStep`
// and `makeBatches`, a `SideBuilders` entry in bench/page/train-step-page.ts, and entries in
// TRAIN_STEP_MODELS. The driver, checks, table and docs need no change.
import { sampleBatch, type Batch } from '../src/data/split';
import type { MlpConfig } from '../src/model/mlp-spec';
import type { GptConfig } from '../src/model/gpt-spec';
import type { AdamWHyper } from '../src/optim/adamw';
import { Rng } from '../src/util/rng';

/** The char-level MLP language model (src/model/mlp-spec.ts): one next-token prediction per window. */
export interface MlpStepModel {
  kind: 'mlp';
  /** Short name for `--models`. */
  id: string;
  /** The row label in the table. */
  what: string;
  cfg: MlpConfig;
  batch: number;
}

/** The GPT (src/model/gpt-spec.ts): every position of `batch` sequences of cfg.context tokens is a prediction. */
export interface GptStepModel {
  kind: 'gpt';
  id: string;
  what: string;
  cfg: GptConfig;
  /** Sequences per step. */
  batch: number;
}

/** Every kind of model the benchmark knows; extend this union (see above). */
export type TrainStepModel = MlpStepModel | GptStepModel;

export type TrainStepKind = TrainStepModel['kind'];

/** Vocabulary of the benchmark's synthetic token stream: the demo corpus has 37–65 distinct characters. */
export const BENCH_VOCAB = 64;

export const TRAIN_STEP_MODELS: readonly TrainStepModel[] = [
  {
    kind: 'mlp',
    id: 'mlp-demo',
    what: 'MLP demo job (V64 k8 D16 H128, B64)',
    cfg: { vocab: BENCH_VOCAB, context: 8, embed: 16, hidden: 128 },
    batch: 64,
  },
  {
    kind: 'mlp',
    id: 'mlp-large',
    what: 'MLP large (V64 k16 D32 H512, B256)',
    cfg: { vocab: BENCH_VOCAB, context: 16, embed: 32, hidden: 512 },
    batch: 256,
  },
  {
    kind: 'gpt',
    id: 'gpt-small',
    what: 'GPT (V64 T64 L2 H2 C64 tied, B16 × 64 tokens)',
    cfg: { vocab: BENCH_VOCAB, context: 64, layers: 2, heads: 2, width: 64, tiedEmbeddings: true },
    batch: 16,
  },
  {
    kind: 'gpt',
    id: 'gpt-lowrank',
    what: 'GPT low rank 16 (same, every block U·Vᵀ)',
    cfg: {
      vocab: BENCH_VOCAB,
      context: 64,
      layers: 2,
      heads: 2,
      width: 64,
      tiedEmbeddings: true,
      lowRank: { rank: 16, layers: 'all' },
    },
    batch: 16,
  },
];

/**
 * The optimizer both sides run: the demo job's AdamW settings (coordinator/job-spec.ts DEFAULT_JOB), with
 * a nonzero weight decay so that the decoupled decay is part of the work on both sides (the demo uses 0).
 */
export const BENCH_HYPER: AdamWHyper = { lr: 3e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };

/** Tokens predicted (and so trained on) per step. */
export function tokensPerStep(m: TrainStepModel): number {
  switch (m.kind) {
    case 'mlp':
      return m.batch;
    case 'gpt':
      return m.batch * m.cfg.context;
  }
}

/** The entries named in `ids` (comma list from --models), in that order; unknown names are an error. */
export function selectModels(
  ids: readonly string[] | undefined,
  all: readonly TrainStepModel[] = TRAIN_STEP_MODELS,
): TrainStepModel[] {
  if (ids === undefined) return [...all];
  if (ids.length === 0) throw new RangeError('no models named');
  return ids.map((id) => {
    const m = all.find((x) => x.id === id);
    if (!m) throw new RangeError(`unknown model "${id}" (known: ${all.map((x) => x.id).join(', ')})`);
    return m;
  });
}

/**
 * A seeded synthetic token stream with something to learn (each token is one of 4 successors of the one
 * before it, so the loss can fall from ln V toward ln 4 and the gradients are not noise), and `count`
 * batches for model `m` sampled from it: MLP windows (src/data/split.ts sampleBatch) or GPT sequences
 * (tokens and the same positions shifted by one as targets).
 */
export function makeBatches(m: TrainStepModel, count: number, seed: number): Batch[] {
  const { vocab, context } = m.cfg;
  const rng = new Rng(seed);
  const stream = new Int32Array(Math.max(20_000, 4 * m.batch * (context + 1)));
  stream[0] = rng.int(vocab);
  for (let i = 1; i < stream.length; i++) stream[i] = (stream[i - 1] * 7 + 3 + rng.int(4)) % vocab;
  const pick = new Rng(seed ^ 0x9e3779b9);
  if (m.kind === 'mlp') return Array.from({ length: count }, () => sampleBatch(stream, context, m.batch, pick));
  return Array.from({ length: count }, () => {
    const tokens = new Int32Array(m.batch * context);
    const targets = new Int32Array(m.batch * context);
    for (let b = 0; b < m.batch; b++) {
      const s = pick.int(stream.length - context);
      tokens.set(stream.subarray(s, s + context), b * context);
      targets.set(stream.subarray(s + 1, s + 1 + context), b * context);
    }
    return { tokens, targets };
  });
}
