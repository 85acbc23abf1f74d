// The GPT (nanoGPT / GPT-2 shape) language model's specification: config and its validation, the flat
// parameter layout in PyTorch names and shapes, parameter count, forward FLOPs, and seeded GPT-2 init.
//
//   x = wte[tokens] + wpe[positions]                              [B, T, C]
//   for each block h.i:  x = x + attn.c_proj(CausalSelfAttention(attn.c_attn(ln_1(x))))
//                        x = x + mlp.c_proj(GELU_tanh(mlp.c_fc(ln_2(x))))
//   logits = ln_f(x) · lm_headᵀ  (lm_head = wte when tiedEmbeddings)   [B, T, V]
//
// Parameters are stored flat, in the order of `gptParamSpecs` (nanoGPT's state_dict order), each
// tensor row-major with PyTorch's layout (Linear weight is [out, in]). nanoGPT keeps everything but
// lm_head under `transformer.`; `gptStateDictKey` gives that key. A low-rank Linear (Pufferfish)
// stores W = U·Vᵀ as `<layer>.weight_u` [out, r] and `<layer>.weight_v` [in, r] instead of
// `<layer>.weight`; its bias is unchanged. See docs/MODELS.md.
import { Rng } from '../util/rng';
import { GPT_LIMITS } from '../schema/model';
import type { ParamSpec } from './mlp-spec';

export type { ParamSpec } from './mlp-spec';

export interface GptLowRank {
  /** Rank r of every factorised Linear: 1 ≤ r ≤ width (every block Linear has min(out, in) = width). */
  rank: number;
  /** 'middle' (default, Pufferfish): all blocks but the first and the last; 'all': every block. */
  layers?: 'middle' | 'all';
}

export interface GptConfig {
  /** Vocabulary size V. */
  vocab: number;
  /** Block size T: the longest sequence the model sees (rows of wpe). */
  context: number;
  /** Number of transformer blocks L. */
  layers: number;
  /** Attention heads per block; width must be divisible by it. */
  heads: number;
  /** Residual stream width C (n_embd). */
  width: number;
  /** lm_head shares wte's weights (GPT-2 style) when true; otherwise lm_head.weight [V, C] exists. */
  tiedEmbeddings: boolean;
  /** Low-rank (U·Vᵀ) block Linear layers, absent for a full-rank model. */
  lowRank?: GptLowRank;
}

/** Limits on each integer field, checked by validateGptConfig; the schema's (src/schema/model.ts). */
export { GPT_LIMITS };

export function validateGptConfig(cfg: GptConfig): void {
  for (const key of Object.keys(GPT_LIMITS) as (keyof typeof GPT_LIMITS)[]) {
    const v = cfg[key];
    const [lo, hi] = GPT_LIMITS[key];
    if (!Number.isInteger(v) || v < lo || v > hi) {
      throw new RangeError(`model.${key} must be an integer in [${lo}, ${hi}], got ${JSON.stringify(v)}`);
    }
  }
  if (cfg.width % cfg.heads !== 0) {
    throw new RangeError(`model.width (${cfg.width}) must be divisible by model.heads (${cfg.heads})`);
  }
  if (typeof cfg.tiedEmbeddings !== 'boolean') {
    throw new RangeError(`model.tiedEmbeddings must be true or false, got ${JSON.stringify(cfg.tiedEmbeddings)}`);
  }
  const lr = cfg.lowRank;
  if (lr !== undefined) {
    if (typeof lr !== 'object' || lr === null)
      throw new RangeError(`model.lowRank must be an object, got ${JSON.stringify(lr)}`);
    if (!Number.isInteger(lr.rank) || lr.rank < 1 || lr.rank > cfg.width) {
      throw new RangeError(
        `model.lowRank.rank must be an integer in [1, ${cfg.width}] (the width), got ${JSON.stringify(lr.rank)}`,
      );
    }
    if (lr.layers !== undefined && lr.layers !== 'middle' && lr.layers !== 'all') {
      throw new RangeError(`model.lowRank.layers must be 'middle' or 'all', got ${JSON.stringify(lr.layers)}`);
    }
    if ((lr.layers ?? 'middle') === 'middle' && cfg.layers < 3) {
      throw new RangeError(
        `model.lowRank.layers 'middle' keeps the first and last blocks ` +
          `full rank, so it needs model.layers ≥ 3, got ${cfg.layers}`,
      );
    }
  }
}

/** Whether block i's Linear layers are low rank under cfg.lowRank. */
export function isLowRankBlock(cfg: GptConfig, i: number): boolean {
  if (!cfg.lowRank) return false;
  if ((cfg.lowRank.layers ?? 'middle') === 'all') return true;
  return i > 0 && i < cfg.layers - 1;
}

export interface GptLinear {
  block: number;
  /** Module path, e.g. 'h.1.attn.c_attn'. */
  name: string;
  out: number;
  in: number;
  /** Rank of the U·Vᵀ factorisation, or 0 for a full-rank weight. */
  rank: number;
}

/** The four Linear layers of each block in order (attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj). */
export function gptLinears(cfg: GptConfig): GptLinear[] {
  const C = cfg.width;
  const out: GptLinear[] = [];
  for (let i = 0; i < cfg.layers; i++) {
    const rank = isLowRankBlock(cfg, i) ? cfg.lowRank!.rank : 0;
    out.push({ block: i, name: `h.${i}.attn.c_attn`, out: 3 * C, in: C, rank });
    out.push({ block: i, name: `h.${i}.attn.c_proj`, out: C, in: C, rank });
    out.push({ block: i, name: `h.${i}.mlp.c_fc`, out: 4 * C, in: C, rank });
    out.push({ block: i, name: `h.${i}.mlp.c_proj`, out: C, in: 4 * C, rank });
  }
  return out;
}

/** Flat layout: names, shapes and offsets in nanoGPT's state_dict order (without `transformer.`). */
export function gptParamSpecs(cfg: GptConfig): ParamSpec[] {
  validateGptConfig(cfg);
  const { vocab: V, context: T, width: C } = cfg;
  const shapes: [string, number[]][] = [
    ['wte.weight', [V, C]],
    ['wpe.weight', [T, C]],
  ];
  const linears = gptLinears(cfg);
  const linear = (l: GptLinear) => {
    if (l.rank > 0) {
      shapes.push([`${l.name}.weight_u`, [l.out, l.rank]]);
      shapes.push([`${l.name}.weight_v`, [l.in, l.rank]]);
    } else {
      shapes.push([`${l.name}.weight`, [l.out, l.in]]);
    }
    shapes.push([`${l.name}.bias`, [l.out]]);
  };
  for (let i = 0; i < cfg.layers; i++) {
    const [cAttn, aProj, cFc, mProj] = linears.slice(4 * i, 4 * i + 4);
    shapes.push([`h.${i}.ln_1.weight`, [C]], [`h.${i}.ln_1.bias`, [C]]);
    linear(cAttn);
    linear(aProj);
    shapes.push([`h.${i}.ln_2.weight`, [C]], [`h.${i}.ln_2.bias`, [C]]);
    linear(cFc);
    linear(mProj);
  }
  shapes.push(['ln_f.weight', [C]], ['ln_f.bias', [C]]);
  if (!cfg.tiedEmbeddings) shapes.push(['lm_head.weight', [V, C]]);
  let offset = 0;
  return shapes.map(([name, shape]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const spec = { name, shape, offset, size };
    offset += size;
    return spec;
  });
}

/** The key nanoGPT's `GPT.state_dict()` uses for one of our names. */
export function gptStateDictKey(name: string): string {
  return name.startsWith('lm_head.') ? name : `transformer.${name}`;
}

export function gptParamCount(cfg: GptConfig): number {
  const specs = gptParamSpecs(cfg);
  const last = specs[specs.length - 1];
  return last.offset + last.size;
}

/** Name → subarray view of a flat parameter (or gradient) vector. */
export function gptParamViews<A extends Float32Array | Float64Array>(cfg: GptConfig, flat: A): Map<string, A> {
  const specs = gptParamSpecs(cfg);
  const want = specs[specs.length - 1].offset + specs[specs.length - 1].size;
  if (flat.length !== want) throw new RangeError(`expected ${want} parameters for this model, got ${flat.length}`);
  return new Map(specs.map((s) => [s.name, flat.subarray(s.offset, s.offset + s.size) as A]));
}

/**
 * Forward FLOPs per token for sequences of length `seq` (default: the context), multiply-adds
 * counted as 2:
 *   2·Σ_linear (out·in, or r·(out+in) when low rank)  (block Linears, U·(Vᵀx) for low rank)
 * + 2·V·C                                             (lm head; the embedding lookups are free)
 * + 4·L·C·seq                                         (attention: Q·Kᵀ and att·V over all seq keys)
 * Attention is counted over the whole seq×seq square as nanoGPT's estimate_mfu and PaLM do (the
 * causal mask halves the useful work); layernorm, GELU, softmax, biases and residuals are not
 * counted. Backward is about twice the forward.
 */
export function gptFlopsPerToken(cfg: GptConfig, seq: number = cfg.context): number {
  validateGptConfig(cfg);
  if (!Number.isInteger(seq) || seq < 1 || seq > cfg.context) {
    throw new RangeError(`seq must be an integer in [1, ${cfg.context}] (the context), got ${seq}`);
  }
  let mads = 0;
  for (const l of gptLinears(cfg)) mads += l.rank > 0 ? l.rank * (l.out + l.in) : l.out * l.in;
  mads += cfg.vocab * cfg.width;
  return 2 * mads + 4 * cfg.layers * cfg.width * seq;
}

/** The standard deviation GPT-2 init gives a Linear weight (before any factorisation). */
export function gptInitStd(cfg: GptConfig, linearName: string): number {
  return linearName.endsWith('c_proj') ? 0.02 / Math.sqrt(2 * cfg.layers) : 0.02;
}

/**
 * Seeded GPT-2 init (as nanoGPT's _init_weights): every Linear weight and both embeddings
 * N(0, 0.02²); attn.c_proj and mlp.c_proj weights N(0, (0.02/sqrt(2L))²); biases 0; layernorm
 * weight 1, bias 0. A low-rank weight with target std σ gets U and V entries with standard deviation
 * s = sqrt(σ/sqrt(r)), so that each entry of U·Vᵀ (a sum of r products of independent entries) has
 * variance r·s⁴ = σ².
 */
export function gptInit(cfg: GptConfig, seed: number): Float32Array {
  const rng = new Rng(seed);
  const out = new Float32Array(gptParamCount(cfg));
  const views = gptParamViews(cfg, out);
  const ranks = new Map(gptLinears(cfg).map((l) => [l.name, l.rank]));
  const fill = (v: Float32Array, std: number) => {
    for (let i = 0; i < v.length; i++) v[i] = std * rng.normal();
  };
  for (const [name, v] of views) {
    const dot = name.lastIndexOf('.');
    const module = name.slice(0, dot);
    const leaf = name.slice(dot + 1);
    if (module.endsWith('ln_1') || module.endsWith('ln_2') || module === 'ln_f') {
      if (leaf === 'weight') v.fill(1);
    } else if (leaf === 'bias') {
      // zeros
    } else if (leaf === 'weight_u' || leaf === 'weight_v') {
      const r = ranks.get(module)!;
      fill(v, Math.sqrt(gptInitStd(cfg, module) / Math.sqrt(r)));
    } else {
      fill(v, gptInitStd(cfg, module));
    }
  }
  return out;
}
