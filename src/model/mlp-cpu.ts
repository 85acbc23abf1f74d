// CPU reference of the char-level MLP language model (see mlp-spec.ts for the parameter layout):
//   x = concat(embedding[tokens])  [B, k·D]
//   h = GELU_tanh(x·hiddenᵀ + hidden.bias)  [B, H]
//   logits = h·outᵀ + out.bias  [B, V];  loss = mean softmax cross-entropy vs targets.
// mlpForwardBackward is the float64 gradient reference for the GPU; mlpLoss is the fast forward the
// coordinator uses for validation loss.
import { mlpParamSpecs, mlpParamCount, type MlpConfig } from './mlp-spec';
import { checkMlpBatch } from './mlp-batch';
import { gelu, geluGrad } from '../gpu/kernels/gelu';

type Params = Float32Array | Float64Array;

function checkParams(cfg: MlpConfig, params: Params): void {
  const want = mlpParamCount(cfg);
  if (params.length !== want) throw new RangeError(`expected ${want} parameters for this model, got ${params.length}`);
}

function views(cfg: MlpConfig, params: Params) {
  const [emb, wh, bh, wo, bo] = mlpParamSpecs(cfg).map((s) => params.subarray(s.offset, s.offset + s.size));
  return { emb, wh, bh, wo, bo };
}

/** Loss and the flat gradient (mlp-spec layout), all in double precision. */
export function mlpForwardBackward(
  cfg: MlpConfig,
  params: Params,
  tokens: Int32Array,
  targets: Int32Array,
): { loss: number; grads: Float64Array } {
  checkParams(cfg, params);
  const B = checkMlpBatch(cfg, tokens, targets);
  const { vocab: V, context: k, embed: D, hidden: H } = cfg;
  const KD = k * D;
  const p = views(cfg, params);
  const grads = new Float64Array(params.length);
  const g = views(cfg, grads);

  const x = new Float64Array(B * KD);
  for (let q = 0; q < B * k; q++) for (let d = 0; d < D; d++) x[q * D + d] = p.emb[tokens[q] * D + d];
  const pre = new Float64Array(B * H);
  const h = new Float64Array(B * H);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < H; j++) {
      let s = p.bh[j];
      for (let i = 0; i < KD; i++) s += x[b * KD + i] * p.wh[j * KD + i];
      pre[b * H + j] = s;
      h[b * H + j] = gelu(s);
    }
  }
  // Logits, then softmax cross-entropy with dlogits = (softmax − onehot)/B in place.
  const dlogits = new Float64Array(B * V);
  let loss = 0;
  for (let b = 0; b < B; b++) {
    const row = dlogits.subarray(b * V, (b + 1) * V);
    let mx = -Infinity;
    for (let v = 0; v < V; v++) {
      let s = p.bo[v];
      for (let j = 0; j < H; j++) s += h[b * H + j] * p.wo[v * H + j];
      row[v] = s;
      mx = Math.max(mx, s);
    }
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(row[v] - mx);
    const lse = mx + Math.log(sum);
    loss += lse - row[targets[b]];
    for (let v = 0; v < V; v++) row[v] = (Math.exp(row[v] - lse) - (v === targets[b] ? 1 : 0)) / B;
  }
  loss /= B;

  const dpre = new Float64Array(B * H);
  for (let b = 0; b < B; b++) {
    for (let v = 0; v < V; v++) {
      const dl = dlogits[b * V + v];
      g.bo[v] += dl;
      for (let j = 0; j < H; j++) g.wo[v * H + j] += dl * h[b * H + j];
    }
    for (let j = 0; j < H; j++) {
      let dh = 0;
      for (let v = 0; v < V; v++) dh += dlogits[b * V + v] * p.wo[v * H + j];
      dpre[b * H + j] = dh * geluGrad(pre[b * H + j]);
    }
  }
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < H; j++) {
      const dp = dpre[b * H + j];
      g.bh[j] += dp;
      for (let i = 0; i < KD; i++) g.wh[j * KD + i] += dp * x[b * KD + i];
    }
    for (let i = 0; i < KD; i++) {
      let dx = 0;
      for (let j = 0; j < H; j++) dx += dpre[b * H + j] * p.wh[j * KD + i];
      const q = b * k + Math.floor(i / D);
      g.emb[tokens[q] * D + (i % D)] += dx;
    }
  }
  return { loss, grads };
}

/** Scratch for one example's forward pass in f32 rows with double accumulators. */
interface RowScratch {
  x: Float32Array;
  h: Float32Array;
  logits: Float64Array;
}

function rowScratch(cfg: MlpConfig): RowScratch {
  return {
    x: new Float32Array(cfg.context * cfg.embed),
    h: new Float32Array(cfg.hidden),
    logits: new Float64Array(cfg.vocab),
  };
}

/** Logits of one example (its k tokens start at `tokens[at]`) into `s.logits`; returns their max. */
function forwardRow(
  cfg: MlpConfig,
  p: ReturnType<typeof views>,
  tokens: Int32Array,
  at: number,
  s: RowScratch,
): number {
  const { vocab: V, context: k, embed: D, hidden: H } = cfg;
  const KD = k * D;
  for (let j = 0; j < k; j++) s.x.set(p.emb.subarray(tokens[at + j] * D, tokens[at + j] * D + D), j * D);
  for (let j = 0; j < H; j++) {
    let acc = p.bh[j];
    const o = j * KD;
    for (let i = 0; i < KD; i++) acc += s.x[i] * p.wh[o + i];
    s.h[j] = gelu(acc);
  }
  let mx = -Infinity;
  for (let v = 0; v < V; v++) {
    let acc = p.bo[v];
    const o = v * H;
    for (let j = 0; j < H; j++) acc += s.h[j] * p.wo[o + j];
    s.logits[v] = acc;
    if (acc > mx) mx = acc;
  }
  return mx;
}

/**
 * Mean loss over all examples (targets.length of them, any number), forward only: one example at a
 * time through f32 rows with double accumulators, so memory stays O(V + H + k·D).
 */
export function mlpLoss(cfg: MlpConfig, params: Float32Array, tokens: Int32Array, targets: Int32Array): number {
  checkParams(cfg, params);
  const n = checkMlpBatch(cfg, tokens, targets);
  const p = views(cfg, params);
  const s = rowScratch(cfg);
  let total = 0;
  for (let b = 0; b < n; b++) {
    const mx = forwardRow(cfg, p, tokens, b * cfg.context, s);
    let sum = 0;
    for (let v = 0; v < cfg.vocab; v++) sum += Math.exp(s.logits[v] - mx);
    total += mx + Math.log(sum) - s.logits[targets[b]];
  }
  return total / n;
}

/** Next-token logits after `context` (exactly cfg.context token ids), for sampling. */
export function mlpLogits(cfg: MlpConfig, params: Float32Array, context: Int32Array): Float64Array {
  checkParams(cfg, params);
  if (context.length !== cfg.context)
    throw new RangeError(`context must hold ${cfg.context} tokens, got ${context.length}`);
  for (const t of context) {
    if (!Number.isInteger(t) || t < 0 || t >= cfg.vocab)
      throw new RangeError(`token ${t} is outside the vocabulary [0, ${cfg.vocab})`);
  }
  const s = rowScratch(cfg);
  forwardRow(cfg, views(cfg, params), context, 0, s);
  return s.logits;
}
