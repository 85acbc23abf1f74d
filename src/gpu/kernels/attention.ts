// Causal multi-head self-attention over the c_attn output qkv [B,T,3C] (llm.c / nanoGPT layout);
// FlashAttention-style: the forward saves only the per-row log-sum-exp, the backward recomputes the
// probabilities. See shaders/attention.wgsl.
import {
  createLaunch,
  requireBytes,
  requireDims,
  packUniform,
  type Binding,
  type Launch,
  type LaunchOptions,
} from '../launch';

export interface AttentionDims {
  /** B */
  batch: number;
  /** T */
  seq: number;
  /** C = heads · head size */
  channels: number;
  /** NH */
  heads: number;
}

/** Largest head size (C / NH) the kernels support: the head goes through 32-column tiles in at most 4 chunks. */
export const ATTENTION_MAX_HEAD_SIZE = 128;

export function headSize(d: AttentionDims): number {
  return d.channels / d.heads;
}

/**
 * Forward in float64, llm.c style (materialises the [T,T] probabilities of one (b, h) at a time):
 * out [B,T,C], lse [B,NH,T] = log Σ_{s<=t} exp(q_t·k_s/sqrt(hs)).
 */
export function attentionForwardCpu(
  d: AttentionDims,
  qkv: ArrayLike<number>,
): { out: Float64Array; lse: Float64Array } {
  const { batch: B, seq: T, channels: C, heads: NH } = d;
  const hs = C / NH;
  const scale = 1 / Math.sqrt(hs);
  const out = new Float64Array(B * T * C);
  const lse = new Float64Array(B * NH * T);
  const p = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      for (let t = 0; t < T; t++) {
        const qo = (b * T + t) * 3 * C + h * hs;
        let m = -Infinity;
        for (let s = 0; s <= t; s++) {
          const ko = (b * T + s) * 3 * C + C + h * hs;
          let dot = 0;
          for (let i = 0; i < hs; i++) dot += qkv[qo + i] * qkv[ko + i];
          p[s] = dot * scale;
          m = Math.max(m, p[s]);
        }
        let sum = 0;
        for (let s = 0; s <= t; s++) sum += p[s] = Math.exp(p[s] - m);
        lse[(b * NH + h) * T + t] = m + Math.log(sum);
        const oo = (b * T + t) * C + h * hs;
        for (let s = 0; s <= t; s++) {
          const vo = (b * T + s) * 3 * C + 2 * C + h * hs;
          for (let i = 0; i < hs; i++) out[oo + i] += (p[s] / sum) * qkv[vo + i];
        }
      }
    }
  }
  return { out, lse };
}

/** dqkv [B,T,3C] for upstream gradient dout [B,T,C], in float64 (the textbook softmax backward). */
export function attentionBackwardCpu(d: AttentionDims, qkv: ArrayLike<number>, dout: ArrayLike<number>): Float64Array {
  const { batch: B, seq: T, channels: C, heads: NH } = d;
  const hs = C / NH;
  const scale = 1 / Math.sqrt(hs);
  const { lse } = attentionForwardCpu(d, qkv);
  const dqkv = new Float64Array(B * T * 3 * C);
  const p = new Float64Array(T);
  const dp = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      for (let t = 0; t < T; t++) {
        const qo = (b * T + t) * 3 * C + h * hs;
        const go = (b * T + t) * C + h * hs;
        // P[t,s], dP[t,s] = dout_t · v_s, then dS = P·(dP − Σ_s P·dP).
        let pdp = 0;
        for (let s = 0; s <= t; s++) {
          const ko = (b * T + s) * 3 * C + C + h * hs;
          let dot = 0;
          let g = 0;
          for (let i = 0; i < hs; i++) {
            dot += qkv[qo + i] * qkv[ko + i];
            g += dout[go + i] * qkv[ko + C + i];
          }
          p[s] = Math.exp(dot * scale - lse[(b * NH + h) * T + t]);
          dp[s] = g;
          pdp += p[s] * g;
        }
        for (let s = 0; s <= t; s++) {
          const ko = (b * T + s) * 3 * C + C + h * hs;
          const ds = p[s] * (dp[s] - pdp) * scale;
          for (let i = 0; i < hs; i++) {
            dqkv[qo + i] += ds * qkv[ko + i]; // dq
            dqkv[ko + i] += ds * qkv[qo + i]; // dk
            dqkv[ko + C + i] += p[s] * dout[go + i]; // dv
          }
        }
      }
    }
  }
  return dqkv;
}

function uniformFor(what: string, d: AttentionDims): ArrayBuffer {
  requireDims(what, { ...d });
  const hs = headSize(d);
  if (!Number.isInteger(hs))
    throw new RangeError(`${what}: channels ${d.channels} is not a multiple of heads ${d.heads}`);
  if (hs > ATTENTION_MAX_HEAD_SIZE) {
    throw new RangeError(`${what}: head size ${hs} exceeds the kernels' limit of ${ATTENTION_MAX_HEAD_SIZE}`);
  }
  return packUniform([d.batch, d.seq, d.channels, d.heads, hs, { f32: 1 / Math.sqrt(hs) }]);
}

/** Workgroups of the row-block kernels: one per (b, h, 32 rows). */
function blockCount(d: AttentionDims): number {
  return d.batch * d.heads * Math.ceil(d.seq / ATTENTION_TILE);
}

/** Rows per tile of the kernels (query or key rows per workgroup; also the head-column chunk). */
export const ATTENTION_TILE = 32;

/** The override constants: the head goes through the tiles in ceil(hs / 32) column chunks. */
function constantsFor(d: AttentionDims): Record<string, number> {
  return { HC: Math.ceil(headSize(d) / ATTENTION_TILE) };
}

/** out [B,T,C] and lse [B,NH,T] (kept for the backward) from qkv [B,T,3C]. */
export function attentionForwardLaunch(
  device: GPUDevice,
  d: AttentionDims,
  b: { qkv: Binding; out: Binding; lse: Binding },
  opts: LaunchOptions = {},
): Launch {
  const uniform = uniformFor('attention_forward', d);
  const { batch: B, seq: T, channels: C, heads: NH } = d;
  requireBytes('attention qkv', b.qkv, 4 * B * T * 3 * C);
  requireBytes('attention out', b.out, 4 * B * T * C);
  requireBytes('attention lse', b.lse, 4 * B * NH * T);
  return createLaunch(device, {
    shader: 'attention',
    entry: 'attention_forward',
    constants: constantsFor(d),
    uniform,
    bindings: { 1: b.qkv, 2: b.out, 3: b.lse },
    workgroups: blockCount(d),
    ...opts,
  });
}

/**
 * The backward as two launches, writing every element of dqkv [B,T,3C]: dq (which first computes
 * delta[t] = dout_t·out_t for its rows into `delta`, scratch of B·NH·T floats), then dk/dv (which
 * reads delta of all rows). `out` and `lse` are the forward's outputs.
 */
export function attentionBackwardLaunches(
  device: GPUDevice,
  d: AttentionDims,
  b: { qkv: Binding; out: Binding; lse: Binding; dout: Binding; delta: Binding; dqkv: Binding },
  opts: LaunchOptions = {},
): Launch[] {
  const uniform = uniformFor('attention_backward', d);
  const { batch: B, seq: T, channels: C, heads: NH } = d;
  requireBytes('attention qkv', b.qkv, 4 * B * T * 3 * C);
  requireBytes('attention out', b.out, 4 * B * T * C);
  requireBytes('attention lse', b.lse, 4 * B * NH * T);
  requireBytes('attention dout', b.dout, 4 * B * T * C);
  requireBytes('attention delta', b.delta, 4 * B * NH * T);
  requireBytes('attention dqkv', b.dqkv, 4 * B * T * 3 * C);
  const common = { shader: 'attention', uniform, constants: constantsFor(d), workgroups: blockCount(d), ...opts };
  return [
    createLaunch(device, {
      ...common,
      entry: 'attention_backward_dq',
      bindings: { 1: b.qkv, 4: b.out, 5: b.dout, 6: b.delta, 7: b.lse, 9: b.dqkv },
    }),
    createLaunch(device, {
      ...common,
      entry: 'attention_backward_dkv',
      bindings: { 1: b.qkv, 5: b.dout, 7: b.lse, 8: b.delta, 9: b.dqkv },
    }),
  ];
}
