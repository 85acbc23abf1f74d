// The char-level MLP language model's shape: k previous tokens → embeddings concatenated →
// hidden layer (GELU) → logits over the vocabulary. Parameters are stored flat, in the order of
// `mlpParamSpecs`, each tensor row-major with PyTorch's layout (Linear weight is [out, in]),
// so a checkpoint loads into `torch.nn.Linear`/`torch.nn.Embedding` without transposes.
import { Rng } from '../util/rng';
import { MLP_LIMITS } from '../schema/model';

export interface MlpConfig {
  /** Vocabulary size V (number of distinct tokens). */
  vocab: number;
  /** Number of previous tokens k the model sees. */
  context: number;
  /** Embedding width D per token. */
  embed: number;
  /** Hidden layer width H. */
  hidden: number;
}

export interface ParamSpec {
  name: string;
  shape: number[];
  /** Offset in elements inside the flat parameter vector. */
  offset: number;
  size: number;
}

export function mlpParamSpecs(cfg: MlpConfig): ParamSpec[] {
  const { vocab: V, context: k, embed: D, hidden: H } = cfg;
  const shapes: [string, number[]][] = [
    ['embedding.weight', [V, D]],
    ['hidden.weight', [H, k * D]],
    ['hidden.bias', [H]],
    ['out.weight', [V, H]],
    ['out.bias', [V]],
  ];
  let offset = 0;
  return shapes.map(([name, shape]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const spec = { name, shape, offset, size };
    offset += size;
    return spec;
  });
}

export function mlpParamCount(cfg: MlpConfig): number {
  return mlpParamSpecs(cfg).reduce((a, s) => a + s.size, 0);
}

/** Forward FLOPs per predicted token (multiply-adds counted as 2). Backward is about twice this. */
export function mlpFlopsPerToken(cfg: MlpConfig): number {
  const { vocab: V, context: k, embed: D, hidden: H } = cfg;
  return 2 * (k * D * H + H * V);
}

/** Seeded init: embeddings N(0, 1)·0.5, Linear weights U(±1/sqrt(fan_in)) like PyTorch, biases 0. */
export function mlpInit(cfg: MlpConfig, seed: number): Float32Array {
  const rng = new Rng(seed);
  const specs = mlpParamSpecs(cfg);
  const out = new Float32Array(mlpParamCount(cfg));
  for (const s of specs) {
    const view = out.subarray(s.offset, s.offset + s.size);
    if (s.name === 'embedding.weight') {
      for (let i = 0; i < view.length; i++) view[i] = 0.5 * rng.normal();
    } else if (s.name.endsWith('.weight')) {
      const bound = 1 / Math.sqrt(s.shape[1]);
      for (let i = 0; i < view.length; i++) view[i] = (2 * rng.next() - 1) * bound;
    }
  }
  return out;
}

export function validateMlpConfig(cfg: MlpConfig): void {
  const limits: Record<keyof MlpConfig, readonly [number, number]> = MLP_LIMITS;
  for (const key of Object.keys(limits) as (keyof MlpConfig)[]) {
    const v = cfg[key];
    const [lo, hi] = limits[key];
    if (!Number.isInteger(v) || v < lo || v > hi) {
      throw new RangeError(`model.${key} must be an integer in [${lo}, ${hi}], got ${JSON.stringify(v)}`);
    }
  }
}
