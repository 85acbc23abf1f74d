// Low-rank factorisation of Linear weights (Pufferfish) and rank selection from the stable rank
// (Cuttlefish), on the CPU in float64. See docs/MODELS.md.
//
// Pufferfish (Wang et al., MLSys 2021): train full rank for a warm-up, then replace each chosen
// Linear weight W [out, in] by W ≈ U·Vᵀ from its truncated SVD, U = U_r·sqrt(S_r) [out, r],
// V = V_r·sqrt(S_r) [in, r] (the singular values split evenly between the factors), keeping the
// first and last blocks full rank; train on. By Eckart–Young, ‖W − U·Vᵀ‖_F² = Σ_{i>r} σ_i², the
// least any rank-r matrix can achieve.
// Cuttlefish (Wang et al., MLSys 2023): a layer's stable rank ‖W‖_F²/σ_max² settles early in
// training; choose each layer's rank from it (see cuttlefishRank).
import { svd, spectralNorm } from './svd';
import { gptLinears, gptParamCount, gptParamViews, validateGptConfig, type GptConfig } from './gpt-spec';

type Matrix = ArrayLike<number>;

export interface LowRankFactors {
  /** [out, r] row-major. */
  U: Float64Array;
  /** [in, r] row-major; W ≈ U·Vᵀ. */
  V: Float64Array;
  /** All min(out, in) singular values of W, descending. */
  S: Float64Array;
  /** Σ_{i>r} σ_i²: the squared Frobenius error of the factorisation (Eckart–Young). */
  discarded: number;
}

/** Rank-r factors of W [out, in] (row-major), U = U_r·sqrt(S_r), V = V_r·sqrt(S_r). */
export function toLowRank(W: Matrix, out: number, inn: number, r: number): LowRankFactors {
  const k = Math.min(out, inn);
  if (!Number.isInteger(r) || r < 1 || r > k)
    throw new RangeError(`rank r must be an integer in [1, ${k}] (min of ${out} × ${inn}), got ${r}`);
  const d = svd(W, out, inn);
  const U = new Float64Array(out * r);
  const V = new Float64Array(inn * r);
  for (let j = 0; j < r; j++) {
    const s = Math.sqrt(d.S[j]);
    for (let i = 0; i < out; i++) U[i * r + j] = d.U[i * k + j] * s;
    for (let i = 0; i < inn; i++) V[i * r + j] = d.V[i * k + j] * s;
  }
  let discarded = 0;
  for (let j = r; j < k; j++) discarded += d.S[j] * d.S[j];
  return { U, V, S: d.S, discarded };
}

export function frobeniusSq(W: Matrix): number {
  let s = 0;
  for (let i = 0; i < W.length; i++) s += W[i] * W[i];
  return s;
}

/**
 * Stable rank ‖W‖_F² / σ_max² of W [out, in]: a continuous, noise-robust stand-in for the rank,
 * between 1 (one direction dominates) and min(out, in) (all singular values equal). σ_max comes from
 * power iteration (svd.ts spectralNorm). 0 for a zero matrix.
 */
export function stableRank(W: Matrix, out: number, inn: number): number {
  const smax = spectralNorm(W, out, inn);
  return smax === 0 ? 0 : frobeniusSq(W) / (smax * smax);
}

export interface CuttlefishOptions {
  /**
   * The layer's stable rank at initialisation. When given, the rank is the "scaled stable rank":
   * the current stable rank times full/initial (a random init has a stable rank well below full, so
   * the unscaled value would undershoot).
   */
  initStableRank?: number;
  /** Lowest rank to return (default 1). */
  minRank?: number;
}

/**
 * Cuttlefish's rank for W [out, in], as in its reference code: est = ⌊stableRank(W)⌋ (at least 1);
 * with `initStableRank` (s₀, also floored), r = ⌈est · full/⌊s₀⌋⌉, else r = est; then clamped to
 * [minRank, full], full = min(out, in). Cuttlefish switches from full-rank to low-rank training once
 * every layer's stable rank has stopped changing; the caller decides that step.
 */
export function cuttlefishRank(W: Matrix, out: number, inn: number, opts: CuttlefishOptions = {}): number {
  const full = Math.min(out, inn);
  const est = Math.max(1, Math.floor(stableRank(W, out, inn)));
  let r = est;
  if (opts.initStableRank !== undefined) {
    if (!(opts.initStableRank > 0) || !Number.isFinite(opts.initStableRank)) {
      throw new RangeError(`initStableRank must be a positive number, got ${opts.initStableRank}`);
    }
    r = Math.ceil((est * full) / Math.max(1, Math.floor(opts.initStableRank)));
  }
  const lo = Math.max(1, opts.minRank ?? 1);
  return Math.min(full, Math.max(lo, r));
}

type Layers = 'middle' | 'all';

function chosenLinears(cfg: GptConfig, layers: Layers) {
  return gptLinears(cfg).filter((l) => layers === 'all' || (l.block > 0 && l.block < cfg.layers - 1));
}

function requireFullRank(cfg: GptConfig, what: string): void {
  validateGptConfig(cfg);
  if (cfg.lowRank) throw new RangeError(`${what} needs a full-rank model (model.lowRank must be absent)`);
}

/** Stable rank of each Linear weight that a conversion with `layers` would factorise, by name. */
export function gptStableRanks(
  cfg: GptConfig,
  params: Float32Array | Float64Array,
  layers: Layers = 'middle',
): Map<string, number> {
  requireFullRank(cfg, 'gptStableRanks');
  const P = gptParamViews(cfg, params);
  return new Map(
    chosenLinears(cfg, layers).map((l) => [`${l.name}.weight`, stableRank(P.get(`${l.name}.weight`)!, l.out, l.in)]),
  );
}

/**
 * Cuttlefish ranks of every Linear weight a conversion with `layers` would factorise, and the one
 * rank for GptConfig.lowRank (which has a single rank): the largest, so no layer gets less than
 * Cuttlefish asks for.
 */
export function gptCuttlefishRank(
  cfg: GptConfig,
  params: Float32Array | Float64Array,
  opts: { layers?: Layers; initStableRanks?: Map<string, number>; minRank?: number } = {},
): { rank: number; perLayer: { name: string; stableRank: number; rank: number }[] } {
  const layers = opts.layers ?? 'middle';
  requireFullRank(cfg, 'gptCuttlefishRank');
  const P = gptParamViews(cfg, params);
  const perLayer = chosenLinears(cfg, layers).map((l) => {
    const name = `${l.name}.weight`;
    const W = P.get(name)!;
    const init = opts.initStableRanks?.get(name);
    return {
      name,
      stableRank: stableRank(W, l.out, l.in),
      rank: cuttlefishRank(W, l.out, l.in, { initStableRank: init, minRank: opts.minRank }),
    };
  });
  if (perLayer.length === 0)
    throw new RangeError(`no Linear layer to factorise: layers 'middle' needs model.layers ≥ 3, got ${cfg.layers}`);
  return { rank: Math.max(...perLayer.map((p) => p.rank)), perLayer };
}

/**
 * Pufferfish's switch: a full-rank GPT's block Linear weights (attn.c_attn, attn.c_proj, mlp.c_fc,
 * mlp.c_proj) in the chosen blocks (default: all but the first and last) become rank-r factors from
 * their truncated SVD; every other tensor is copied. Returns the low-rank config, its parameters
 * (Float32Array in → Float32Array out, Float64Array → Float64Array) and, per factorised weight, the
 * squared Frobenius norm and the discarded part Σ_{i>r} σ_i².
 */
export function convertToLowRank<A extends Float32Array | Float64Array>(
  cfg: GptConfig,
  params: A,
  rank: number,
  layers: Layers = 'middle',
): { cfg: GptConfig; params: A; truncation: { name: string; total: number; discarded: number }[] } {
  requireFullRank(cfg, 'convertToLowRank');
  const lowCfg: GptConfig = { ...cfg, lowRank: { rank, layers } };
  validateGptConfig(lowCfg);
  const P = gptParamViews(cfg, params);
  const n = gptParamCount(lowCfg);
  const outParams = (params instanceof Float64Array ? new Float64Array(n) : new Float32Array(n)) as A;
  const Q = gptParamViews(lowCfg, outParams);
  const truncation: { name: string; total: number; discarded: number }[] = [];
  for (const l of gptLinears(lowCfg)) {
    if (l.rank === 0) continue;
    const W = P.get(`${l.name}.weight`)!;
    const f = toLowRank(W, l.out, l.in, rank);
    Q.get(`${l.name}.weight_u`)!.set(f.U);
    Q.get(`${l.name}.weight_v`)!.set(f.V);
    truncation.push({ name: `${l.name}.weight`, total: frobeniusSq(W), discarded: f.discarded });
  }
  for (const [name, v] of Q) {
    const src = P.get(name);
    if (src) v.set(src);
    else if (!name.endsWith('.weight_u') && !name.endsWith('.weight_v'))
      throw new Error(`internal: no source tensor for ${name}`);
  }
  return { cfg: lowCfg, params: outParams, truncation };
}
