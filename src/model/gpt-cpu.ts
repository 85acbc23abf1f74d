// Float64 CPU reference of the GPT model (gpt-spec.ts has the layout), written plainly in llm.c's
// style: every layer is a forward/backward pair over row-major Float64Arrays; backward functions
// accumulate (+=) into gradients that start at zero. The GPU GPT is tested against this file.
//
// Shapes: N = B·T rows; C width; NH heads of hs = C/NH; V vocab.
//   encoder     x[b,t,:] = wte[tokens[b,t]] + wpe[t]
//   layernorm   y = (x − mean)·rstd·w + b,  rstd = 1/sqrt(var + 1e-5), var biased (÷C) as PyTorch
//   linear      y = x·Wᵀ + bias (W [out,in]);  low rank: h = x·V, y = h·Uᵀ + bias (U [out,r], V [in,r])
//   attention   qkv [N,3C] = (q | k | v), head h uses channels h·hs…(h+1)·hs of each;
//               att[t,t2] = softmax_{t2≤t}(q_t·k_t2/sqrt(hs)), y_t = Σ_{t2≤t} att[t,t2]·v_t2
//   gelu        tanh approximation
// GELU, layernorm and attention use the GPU kernels' own CPU references (src/gpu/kernels/gelu.ts,
// layernorm.ts, attention.ts), so one reference per layer serves both the kernel tests and this model.
//   loss        mean over all B·T positions of −log softmax(logits)[target]
import { gptParamCount, gptParamViews, gptLinears, type GptConfig, type GptLinear } from './gpt-spec';
import { gelu, geluGrad } from '../gpu/kernels/gelu';
import { attentionBackwardCpu, attentionForwardCpu, type AttentionDims } from '../gpu/kernels/attention';
import { layernormBackwardCpu, layernormForwardCpu } from '../gpu/kernels/layernorm';

type Params = Float32Array | Float64Array;
type F64 = Float64Array;

// ---------------------------------------------------------------------------------------------
// Layers

export function encoderForward(
  out: F64,
  tokens: Int32Array,
  wte: Params,
  wpe: Params,
  B: number,
  T: number,
  C: number,
): void {
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const o = (b * T + t) * C;
      const e = tokens[b * T + t] * C;
      const p = t * C;
      for (let c = 0; c < C; c++) out[o + c] = wte[e + c] + wpe[p + c];
    }
  }
}

export function encoderBackward(
  dwte: F64,
  dwpe: F64,
  dout: F64,
  tokens: Int32Array,
  B: number,
  T: number,
  C: number,
): void {
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const o = (b * T + t) * C;
      const e = tokens[b * T + t] * C;
      const p = t * C;
      for (let c = 0; c < C; c++) {
        dwte[e + c] += dout[o + c];
        dwpe[p + c] += dout[o + c];
      }
    }
  }
}

/** out[n,o] = bias[o] + Σ_i inp[n,i]·W[o,i]  (W [OUT, IN] as torch.nn.Linear). */
export function matmulForward(
  out: F64,
  inp: F64,
  W: Params,
  bias: Params | null,
  N: number,
  IN: number,
  OUT: number,
): void {
  for (let n = 0; n < N; n++) {
    const x = n * IN;
    for (let o = 0; o < OUT; o++) {
      let s = bias ? bias[o] : 0;
      const w = o * IN;
      for (let i = 0; i < IN; i++) s += inp[x + i] * W[w + i];
      out[n * OUT + o] = s;
    }
  }
}

export function matmulBackward(
  dinp: F64,
  dW: F64,
  dbias: F64 | null,
  dout: F64,
  inp: F64,
  W: Params,
  N: number,
  IN: number,
  OUT: number,
): void {
  for (let n = 0; n < N; n++) {
    const x = n * IN;
    for (let o = 0; o < OUT; o++) {
      const d = dout[n * OUT + o];
      const w = o * IN;
      for (let i = 0; i < IN; i++) {
        dinp[x + i] += d * W[w + i];
        dW[w + i] += d * inp[x + i];
      }
      if (dbias) dbias[o] += d;
    }
  }
}

/** h[n,k] = Σ_i inp[n,i]·V[i,k] (V [IN, R]); then out = h·Uᵀ + bias via matmulForward. */
export function lowRankForward(
  out: F64,
  h: F64,
  inp: F64,
  U: Params,
  V: Params,
  bias: Params,
  N: number,
  IN: number,
  OUT: number,
  R: number,
): void {
  h.fill(0);
  for (let n = 0; n < N; n++) {
    for (let i = 0; i < IN; i++) {
      const x = inp[n * IN + i];
      for (let k = 0; k < R; k++) h[n * R + k] += x * V[i * R + k];
    }
  }
  matmulForward(out, h, U, bias, N, R, OUT);
}

export function lowRankBackward(
  dinp: F64,
  dU: F64,
  dV: F64,
  dbias: F64,
  dout: F64,
  inp: F64,
  h: F64,
  U: Params,
  V: Params,
  N: number,
  IN: number,
  OUT: number,
  R: number,
): void {
  const dh = new Float64Array(N * R);
  matmulBackward(dh, dU, dbias, dout, h, U, N, R, OUT);
  for (let n = 0; n < N; n++) {
    for (let i = 0; i < IN; i++) {
      const x = inp[n * IN + i];
      let s = 0;
      for (let k = 0; k < R; k++) {
        s += dh[n * R + k] * V[i * R + k];
        dV[i * R + k] += x * dh[n * R + k];
      }
      dinp[n * IN + i] += s;
    }
  }
}

export function geluForward(out: F64, inp: F64): void {
  for (let i = 0; i < inp.length; i++) out[i] = gelu(inp[i]);
}

export function geluBackward(dinp: F64, inp: F64, dout: F64): void {
  for (let i = 0; i < inp.length; i++) dinp[i] += geluGrad(inp[i]) * dout[i];
}

export function residualForward(out: F64, a: F64, b: F64): void {
  for (let i = 0; i < out.length; i++) out[i] = a[i] + b[i];
}

export function residualBackward(da: F64, db: F64, dout: F64): void {
  for (let i = 0; i < dout.length; i++) {
    da[i] += dout[i];
    db[i] += dout[i];
  }
}

/** Sum over rows of −log softmax(logits)[target]; writes dlogits = (softmax − onehot)·dscale. */
export function crossEntropyForwardBackward(
  dlogits: F64 | null,
  logits: F64,
  targets: Int32Array,
  N: number,
  V: number,
  dscale: number,
): number {
  let total = 0;
  for (let n = 0; n < N; n++) {
    const o = n * V;
    let max = -Infinity;
    for (let v = 0; v < V; v++) if (logits[o + v] > max) max = logits[o + v];
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(logits[o + v] - max);
    const lse = max + Math.log(sum);
    total += lse - logits[o + targets[n]];
    if (dlogits) {
      for (let v = 0; v < V; v++)
        dlogits[o + v] = (Math.exp(logits[o + v] - lse) - (v === targets[n] ? 1 : 0)) * dscale;
    }
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// The model

/** Checks batch shapes and token ranges; returns T (tokens per sequence, 1 ≤ T ≤ context). */
export function checkGptBatch(cfg: GptConfig, tokens: Int32Array, targets: Int32Array | null, B: number): number {
  if (!Number.isInteger(B) || B < 1)
    throw new RangeError(`B (sequences in the batch) must be a positive integer, got ${B}`);
  if (tokens.length === 0 || tokens.length % B !== 0) {
    throw new RangeError(`expected tokens.length to be a positive multiple of B = ${B}, got ${tokens.length}`);
  }
  const T = tokens.length / B;
  if (T > cfg.context)
    throw new RangeError(`sequence length ${T} (tokens.length / B) exceeds the context ${cfg.context}`);
  if (targets && targets.length !== tokens.length) {
    throw new RangeError(`expected ${tokens.length} targets (B ${B} × T ${T}), got ${targets.length}`);
  }
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (!(t >= 0 && t < cfg.vocab))
      throw new RangeError(`tokens[${i}] = ${t} is outside the vocabulary [0, ${cfg.vocab})`);
  }
  if (targets) {
    for (let i = 0; i < targets.length; i++) {
      const t = targets[i];
      if (!(t >= 0 && t < cfg.vocab))
        throw new RangeError(`targets[${i}] = ${t} is outside the vocabulary [0, ${cfg.vocab})`);
    }
  }
  return T;
}

interface LinearActs {
  out: F64;
  /** x·V for a low-rank layer. */
  h: F64 | null;
}

function linearForward(l: GptLinear, P: Map<string, Params>, inp: F64, N: number): LinearActs {
  const out = new Float64Array(N * l.out);
  const bias = P.get(`${l.name}.bias`)!;
  if (l.rank > 0) {
    const h = new Float64Array(N * l.rank);
    lowRankForward(
      out,
      h,
      inp,
      P.get(`${l.name}.weight_u`)!,
      P.get(`${l.name}.weight_v`)!,
      bias,
      N,
      l.in,
      l.out,
      l.rank,
    );
    return { out, h };
  }
  matmulForward(out, inp, P.get(`${l.name}.weight`)!, bias, N, l.in, l.out);
  return { out, h: null };
}

function linearBackward(
  l: GptLinear,
  P: Map<string, Params>,
  G: Map<string, F64>,
  dout: F64,
  inp: F64,
  acts: LinearActs,
  N: number,
): F64 {
  const dinp = new Float64Array(N * l.in);
  const dbias = G.get(`${l.name}.bias`)!;
  if (l.rank > 0) {
    lowRankBackward(
      dinp,
      G.get(`${l.name}.weight_u`)!,
      G.get(`${l.name}.weight_v`)!,
      dbias,
      dout,
      inp,
      acts.h!,
      P.get(`${l.name}.weight_u`)!,
      P.get(`${l.name}.weight_v`)!,
      N,
      l.in,
      l.out,
      l.rank,
    );
  } else {
    matmulBackward(dinp, G.get(`${l.name}.weight`)!, dbias, dout, inp, P.get(`${l.name}.weight`)!, N, l.in, l.out);
  }
  return dinp;
}

interface BlockActs {
  inp: F64;
  ln1: F64;
  qkv: LinearActs;
  atty: F64;
  attProj: LinearActs;
  res2: F64;
  ln2: F64;
  fc: LinearActs;
  fcGelu: F64;
  fcProj: LinearActs;
}

interface Acts {
  B: number;
  T: number;
  blocks: BlockActs[];
  final: F64;
  lnf: F64;
  logits: F64;
}

/** dinp += dx, and the layernorm `name`'s weight and bias gradients += theirs (layernormBackwardCpu). */
function layernormBackwardAdd(
  dinp: F64,
  G: Map<string, F64>,
  P: Map<string, Params>,
  name: string,
  dout: F64,
  inp: F64,
  N: number,
  C: number,
): void {
  const g = layernormBackwardCpu(N, C, inp, P.get(`${name}.weight`)!, dout);
  const dw = G.get(`${name}.weight`)!;
  const db = G.get(`${name}.bias`)!;
  for (let i = 0; i < N * C; i++) dinp[i] += g.dx[i];
  for (let c = 0; c < C; c++) {
    dw[c] += g.dweight[c];
    db[c] += g.dbias[c];
  }
}

function checkParams(cfg: GptConfig, params: Params): void {
  const want = gptParamCount(cfg);
  if (params.length !== want) throw new RangeError(`expected ${want} parameters for this model, got ${params.length}`);
}

function forward(cfg: GptConfig, P: Map<string, Params>, tokens: Int32Array, B: number, T: number): Acts {
  const { width: C, heads: NH, vocab: V } = cfg;
  const N = B * T;
  const linears = gptLinears(cfg);
  let x = new Float64Array(N * C);
  encoderForward(x, tokens, P.get('wte.weight')!, P.get('wpe.weight')!, B, T, C);
  const blocks: BlockActs[] = [];
  const dims: AttentionDims = { batch: B, seq: T, channels: C, heads: NH };
  const ln = (inp: F64, name: string) =>
    layernormForwardCpu(N, C, inp, P.get(`${name}.weight`)!, P.get(`${name}.bias`)!).out;
  for (let l = 0; l < cfg.layers; l++) {
    const [cAttn, aProj, cFc, mProj] = linears.slice(4 * l, 4 * l + 4);
    const p = `h.${l}.`;
    const ln1 = ln(x, p + 'ln_1');
    const qkv = linearForward(cAttn, P, ln1, N);
    const atty = attentionForwardCpu(dims, qkv.out).out;
    const attProj = linearForward(aProj, P, atty, N);
    const res2 = new Float64Array(N * C);
    residualForward(res2, x, attProj.out);
    const ln2 = ln(res2, p + 'ln_2');
    const fc = linearForward(cFc, P, ln2, N);
    const fcGelu = new Float64Array(N * 4 * C);
    geluForward(fcGelu, fc.out);
    const fcProj = linearForward(mProj, P, fcGelu, N);
    const res3 = new Float64Array(N * C);
    residualForward(res3, res2, fcProj.out);
    blocks.push({ inp: x, ln1, qkv, atty, attProj, res2, ln2, fc, fcGelu, fcProj });
    x = res3;
  }
  const lnf = ln(x, 'ln_f');
  const head = P.get(cfg.tiedEmbeddings ? 'wte.weight' : 'lm_head.weight')!;
  const logits = new Float64Array(N * V);
  matmulForward(logits, lnf, head, null, N, C, V);
  return { B, T, blocks, final: x, lnf, logits };
}

/** Loss (mean cross-entropy over all B·T positions) and the flat gradient, all in double precision. */
export function gptForwardBackward(
  cfg: GptConfig,
  params: Params,
  tokens: Int32Array,
  targets: Int32Array,
  B: number,
): { loss: number; grads: Float64Array } {
  checkParams(cfg, params);
  const T = checkGptBatch(cfg, tokens, targets, B);
  const { width: C, heads: NH, vocab: V } = cfg;
  const N = B * T;
  const P = gptParamViews(cfg, params);
  const grads = new Float64Array(params.length);
  const G = gptParamViews(cfg, grads);
  const a = forward(cfg, P, tokens, B, T);

  const dlogits = new Float64Array(N * V);
  const loss = crossEntropyForwardBackward(dlogits, a.logits, targets, N, V, 1 / N) / N;

  const headName = cfg.tiedEmbeddings ? 'wte.weight' : 'lm_head.weight';
  const dlnf = new Float64Array(N * C);
  matmulBackward(dlnf, G.get(headName)!, null, dlogits, a.lnf, P.get(headName)!, N, C, V);
  let dx = new Float64Array(N * C);
  layernormBackwardAdd(dx, G, P, 'ln_f', dlnf, a.final, N, C);

  const linears = gptLinears(cfg);
  for (let l = cfg.layers - 1; l >= 0; l--) {
    const [cAttn, aProj, cFc, mProj] = linears.slice(4 * l, 4 * l + 4);
    const p = `h.${l}.`;
    const s = a.blocks[l];
    // res3 = res2 + fcProj
    const dres2 = new Float64Array(N * C);
    const dfcProj = new Float64Array(N * C);
    residualBackward(dres2, dfcProj, dx);
    const dfcGelu = linearBackward(mProj, P, G, dfcProj, s.fcGelu, s.fcProj, N);
    const dfc = new Float64Array(N * 4 * C);
    geluBackward(dfc, s.fc.out, dfcGelu);
    const dln2 = linearBackward(cFc, P, G, dfc, s.ln2, s.fc, N);
    layernormBackwardAdd(dres2, G, P, p + 'ln_2', dln2, s.res2, N, C);
    // res2 = inp + attProj
    const dinp = new Float64Array(N * C);
    const dattProj = new Float64Array(N * C);
    residualBackward(dinp, dattProj, dres2);
    const datty = linearBackward(aProj, P, G, dattProj, s.atty, s.attProj, N);
    const dqkv = attentionBackwardCpu({ batch: B, seq: T, channels: C, heads: NH }, s.qkv.out, datty);
    const dln1 = linearBackward(cAttn, P, G, dqkv, s.ln1, s.qkv, N);
    layernormBackwardAdd(dinp, G, P, p + 'ln_1', dln1, s.inp, N, C);
    dx = dinp;
  }
  encoderBackward(G.get('wte.weight')!, G.get('wpe.weight')!, dx, tokens, B, T, C);
  return { loss, grads };
}

/**
 * Mean loss over all B·T positions, forward only. Runs one sequence at a time, so memory is that of
 * a single sequence's activations whatever B is.
 */
export function gptLoss(cfg: GptConfig, params: Params, tokens: Int32Array, targets: Int32Array, B: number): number {
  checkParams(cfg, params);
  const T = checkGptBatch(cfg, tokens, targets, B);
  const P = gptParamViews(cfg, params);
  let total = 0;
  for (let b = 0; b < B; b++) {
    const a = forward(cfg, P, tokens.subarray(b * T, (b + 1) * T), 1, T);
    total += crossEntropyForwardBackward(null, a.logits, targets.subarray(b * T, (b + 1) * T), T, cfg.vocab, 0);
  }
  return total / (B * T);
}

/** Logits [B, T, V] (row-major) for every position, e.g. for sampling from the last one. */
export function gptLogits(cfg: GptConfig, params: Params, tokens: Int32Array, B: number): Float64Array {
  checkParams(cfg, params);
  const T = checkGptBatch(cfg, tokens, null, B);
  return forward(cfg, gptParamViews(cfg, params), tokens, B, T).logits;
}
