// Causal self-attention vs the float64 reference (llm.c-style, full [T,T] probabilities), on odd
// shapes: T = 1, odd T, T > 64 (several query blocks and key tiles), head sizes 1, 3, 5, 7 (not
// multiples of 4) and 128 (the maximum; 12-row tiles), and one batch with scores in the hundreds
// (an implementation without the running max overflows). Error bound, per element, first order in
// u = 2^-24 and doubled (n = t + 1 keys seen by query row t):
//   score error  dz = (hs + 2)·u·scale·Σ_d|q·k| + u|z|;  e_s = dz + (3 + 2|x|)·2u + u|x|, x = z − max
//                (WGSL's exp is within 3 + 2|x| ulp, 1 ulp <= 2u relative)
//   out:   2·(Σ_s p_s·|v_s|·e_s + ē·Σ_s p_s|v_s| + (4n + 10)·u·Σ_s p_s|v_s|),  ē = Σ_s p_s·e_s
//          (a probability's relative error is its numerator's plus the normaliser's; the online
//          rescaling multiplies acc and l by the same f32 factor, so its exp error cancels)
//   lse:   2·(ē + 4n·u + (3n + 2R)·2u + 2^-21 + 6u|log l| + 2u|lse|), R = max − min score
//          (the rescaling factors' exp errors do not cancel here; log is 2^-21 absolute near 1)
//   backward: p recomputed with relative error ep = dz + E_lse + (3 + 2|z − lse|)·2u + u|z − lse| + u;
//          dp = dout_t·v_s with (hs + 1)·u·Σ|dout·v|; delta = dout_t·out_t with (hs + 1)·u·Σ|dout·out|
//          plus Σ|dout|·(out bound) (the GPU uses its own forward output);
//          eds = ep·p·|dp − delta| + p·(e_dp + e_delta) + 2u·p·(|dp| + |delta|);
//          dq_t = scale·Σ_s dS·k_s: 2·scale·Σ_s (eds·|k_s| + (n + 2)·u·|dS·k_s|), dk likewise over
//          t >= s with q_t, dv_s = Σ_t P·dout_t: 2·Σ_t (ep·P·|dout_t| + (T − s + 2)·u·P·|dout_t|).
//   every bound also gets an absolute 2^-90: a GPU may flush probabilities below 2^-126 to zero, which
//   moves an element by at most n·2^-126·(a multiplier < 2^20 here) < 2^-90.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../util/rng';
import { createStorage } from '../buffers';
import { testDevice, poisoned, run, readF32, assertClose, U32 as u } from '../gpu.test-helper';
import {
  attentionForwardCpu,
  attentionBackwardCpu,
  attentionForwardLaunch,
  attentionBackwardLaunches,
  ATTENTION_MAX_HEAD_SIZE,
  type AttentionDims,
} from './attention';

interface Case extends AttentionDims {
  /** Multiplies the queries of batch 0 (large scores). */
  qScale?: number;
  maxWorkgroupsPerDim?: number;
}

const CASES: Case[] = [
  { batch: 1, seq: 1, channels: 3, heads: 1 },
  { batch: 2, seq: 7, channels: 15, heads: 3, maxWorkgroupsPerDim: 3 },
  { batch: 1, seq: 67, channels: 14, heads: 2 },
  { batch: 1, seq: 130, channels: 2, heads: 2 },
  { batch: 1, seq: 37, channels: 256, heads: 2 },
  { batch: 3, seq: 5, channels: 24, heads: 4, qScale: 40 },
];

/** Per-element bounds for out, lse and dqkv (see the header). */
function bounds(
  d: AttentionDims,
  qkv: Float32Array,
  dout: Float32Array,
  ref: { out: Float64Array; lse: Float64Array },
) {
  const { batch: B, seq: T, channels: C, heads: NH } = d;
  const hs = C / NH;
  const scale = 1 / Math.sqrt(hs);
  const outB = new Float64Array(B * T * C);
  const lseB = new Float64Array(B * NH * T);
  const dB = new Float64Array(B * T * 3 * C);
  const z = new Float64Array(T);
  const dz = new Float64Array(T);
  const p = new Float64Array(T);
  const e = new Float64Array(T);
  const at = (b: number, t: number, part: number, h: number) => (b * T + t) * 3 * C + part * C + h * hs;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      for (let t = 0; t < T; t++) {
        const n = t + 1;
        const qo = at(b, t, 0, h);
        const lse = ref.lse[(b * NH + h) * T + t];
        let m = -Infinity;
        let mn = Infinity;
        for (let s = 0; s <= t; s++) {
          const ko = at(b, s, 1, h);
          let dot = 0;
          let mag = 0;
          for (let i = 0; i < hs; i++) {
            dot += qkv[qo + i] * qkv[ko + i];
            mag += Math.abs(qkv[qo + i] * qkv[ko + i]);
          }
          z[s] = dot * scale;
          dz[s] = (hs + 2) * u * scale * mag + u * Math.abs(z[s]);
          m = Math.max(m, z[s]);
          mn = Math.min(mn, z[s]);
        }
        let ebar = 0;
        for (let s = 0; s <= t; s++) {
          p[s] = Math.exp(z[s] - lse);
          const x = Math.abs(z[s] - m);
          e[s] = dz[s] + (3 + 2 * x) * 2 * u + u * x;
          ebar += p[s] * e[s];
        }
        const go = (b * T + t) * C + h * hs;
        let delta = 0;
        let deltaErr = 0;
        for (let i = 0; i < hs; i++) {
          let a = 0;
          let pe = 0;
          for (let s = 0; s <= t; s++) {
            const v = Math.abs(qkv[at(b, s, 2, h) + i]);
            a += p[s] * v;
            pe += p[s] * v * e[s];
          }
          outB[go + i] = 2 * (pe + ebar * a + (4 * n + 10) * u * a);
          delta += dout[go + i] * ref.out[go + i];
          deltaErr += (hs + 1) * u * Math.abs(dout[go + i] * ref.out[go + i]) + Math.abs(dout[go + i]) * outB[go + i];
        }
        const logl = lse - m;
        const eLse =
          2 *
          (ebar +
            4 * n * u +
            (3 * n + 2 * (m - mn)) * 2 * u +
            2 ** -21 +
            6 * u * Math.abs(logl) +
            2 * u * Math.abs(lse));
        lseB[(b * NH + h) * T + t] = eLse;
        for (let s = 0; s <= t; s++) {
          const ko = at(b, s, 1, h);
          const vo = at(b, s, 2, h);
          let dp = 0;
          let dpMag = 0;
          for (let i = 0; i < hs; i++) {
            dp += dout[go + i] * qkv[vo + i];
            dpMag += Math.abs(dout[go + i] * qkv[vo + i]);
          }
          const y = Math.abs(z[s] - lse);
          const ep = dz[s] + eLse + (3 + 2 * y) * 2 * u + u * y + u;
          const ds = p[s] * (dp - delta);
          const eds =
            ep * p[s] * Math.abs(dp - delta) +
            p[s] * ((hs + 1) * u * dpMag + deltaErr) +
            2 * u * p[s] * (Math.abs(dp) + Math.abs(delta));
          for (let i = 0; i < hs; i++) {
            const q = Math.abs(qkv[qo + i]);
            const k = Math.abs(qkv[ko + i]);
            const g = Math.abs(dout[go + i]);
            dB[qo + i] += 2 * scale * (eds * k + (n + 2) * u * Math.abs(ds) * k);
            dB[ko + i] += 2 * scale * (eds * q + (T - s + 2) * u * Math.abs(ds) * q);
            dB[vo + i] += 2 * (ep * p[s] * g + (T - s + 2) * u * p[s] * g);
          }
        }
      }
    }
  }
  return { outB, lseB, dB };
}

test('attention forward and backward match the float64 reference', async () => {
  const device = await testDevice();
  for (const c of CASES) {
    const { qScale, maxWorkgroupsPerDim, ...d } = c;
    const { batch: B, seq: T, channels: C, heads: NH } = d;
    const rng = new Rng(81 + B * T * C);
    const qkv = rng.uniformArray(B * T * 3 * C, -2, 2);
    if (qScale) for (let t = 0; t < T; t++) for (let i = 0; i < C; i++) qkv[t * 3 * C + i] *= qScale;
    const dout = rng.uniformArray(B * T * C);
    const QKV = createStorage(device, qkv);
    const DOUT = createStorage(device, dout);
    const OUT = poisoned(device, B * T * C);
    const LSE = poisoned(device, B * NH * T);
    const DELTA = poisoned(device, B * NH * T);
    const DQKV = poisoned(device, B * T * 3 * C);
    const opts = maxWorkgroupsPerDim ? { maxWorkgroupsPerDim } : {};
    await run(device, [
      attentionForwardLaunch(device, d, { qkv: QKV, out: OUT, lse: LSE }, opts),
      ...attentionBackwardLaunches(
        device,
        d,
        { qkv: QKV, out: OUT, lse: LSE, dout: DOUT, delta: DELTA, dqkv: DQKV },
        opts,
      ),
    ]);
    const ref = attentionForwardCpu(d, qkv);
    const { outB, lseB, dB } = bounds(d, qkv, dout, ref);
    const tag = `B${B} T${T} C${C} NH${NH}`;
    const tiny = 2 ** -90;
    assertClose(`out ${tag}`, await readF32(device, OUT, B * T * C), ref.out, (i) => outB[i] + tiny);
    assertClose(`lse ${tag}`, await readF32(device, LSE, B * NH * T), ref.lse, (i) => lseB[i]);
    assertClose(
      `dqkv ${tag}`,
      await readF32(device, DQKV, B * T * 3 * C),
      attentionBackwardCpu(d, qkv, dout),
      (i) => dB[i] + tiny,
    );
    [QKV, DOUT, OUT, LSE, DELTA, DQKV].forEach((b) => b.destroy());
  }
});

test('the attention CPU backward matches central finite differences of the CPU forward', () => {
  const d: AttentionDims = { batch: 2, seq: 4, channels: 6, heads: 2 };
  const rng = new Rng(89);
  const qkv = Float64Array.from(rng.uniformArray(2 * 4 * 18, -2, 2));
  const dout = Float64Array.from(rng.uniformArray(2 * 4 * 6));
  const loss = () => attentionForwardCpu(d, qkv).out.reduce((s, o, i) => s + o * dout[i], 0);
  const g = attentionBackwardCpu(d, qkv, dout);
  const h = 1e-5;
  for (let i = 0; i < qkv.length; i++) {
    const keep = qkv[i];
    qkv[i] = keep + h;
    const up = loss();
    qkv[i] = keep - h;
    const down = loss();
    qkv[i] = keep;
    const fd = (up - down) / (2 * h);
    // Truncation ~h²·|f'''| and rounding ~2^-52·|loss|/h are both far below 1e-7 here.
    assert.ok(Math.abs(fd - g[i]) < 1e-7, `dqkv[${i}]: finite difference ${fd}, backward ${g[i]}`);
  }
});

test('attention launches reject bad head sizes', async () => {
  const device = await testDevice();
  const Bf = createStorage(device, 1 << 20);
  const b = { qkv: Bf, out: Bf, lse: Bf };
  assert.throws(
    () => attentionForwardLaunch(device, { batch: 1, seq: 2, channels: 10, heads: 3 }, b),
    /channels 10 is not a multiple of heads 3/,
  );
  const big = ATTENTION_MAX_HEAD_SIZE + 1;
  assert.throws(
    () => attentionForwardLaunch(device, { batch: 1, seq: 2, channels: big, heads: 1 }, b),
    /head size 129 exceeds/,
  );
  Bf.destroy();
});
