// LayerNorm vs the float64 reference. Error budget (u = 2^-24, per row with C columns; m, rs, xhat
// are the exact mean, rstd and normalised value):
//   mean:   Eμ = 2·(C+2)·u·mean|x|       (a sum of C terms in any order, then a division; ×2)
//   rstd:   relative ε = (C+5)·u/2 + 4u + (rs·Eμ)²/2  (the variance sum, halved by the square root;
//           inverseSqrt's 2 ulp; the mean error enters the variance only to second order)
//   xhat:   ex = rs·Eμ + |xhat|·(ε + 2u);   out: 2·(|w|·ex + 2u·(|xhat·w| + |b|))
//   dx:     2·(rs·(u|g| + e_g + ex·|mean(g·xhat)| + |xhat|·e_gx + 3u·(|g| + |mean g| + |xhat·mean(g·xhat)|))
//             + |dx|·(ε + u)),  g = dout·w, e_g = (C+1)u·mean|g|, e_gx = mean(|g|·ex) + (C+2)u·mean|g·xhat|
//   dweight: 2·(Σ_r |dout|·ex + (N+2)·u·Σ_r |dout·xhat|);   dbias: (N+1)·2u·Σ_r |dout|
// The GPU backward consumes the GPU forward's mean and rstd, so their errors are part of ex.
// One row is shifted by +1000 (noise ±1): a one-pass E[x²] − E[x]² variance fails it by far.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../util/rng';
import { createStorage } from '../buffers';
import { testDevice, poisoned, run, readF32, assertClose, U32 as u } from '../gpu.test-helper';
import {
  layernormForwardCpu,
  layernormBackwardCpu,
  layernormForwardLaunch,
  layernormBackwardDxLaunch,
  layernormBackwardParamsLaunch,
  LAYERNORM_EPS,
} from './layernorm';

const SHAPES: [number, number][] = [
  [1, 1],
  [3, 7],
  [13, 64],
  [5, 257],
  [67, 33],
  [300, 5],
  [70, 1100], // 64 lanes per row; the others give 1, 4 and 32 lanes (rowLanes)
];

for (const [N, C] of SHAPES) {
  for (const accumulate of N === 67 ? [false, true] : [false]) {
    test(`layernorm ${N}x${C} forward and backward${accumulate ? ' (accumulate)' : ''}`, async () => {
      const device = await testDevice();
      const rng = new Rng(61 + N * C + (accumulate ? 1 : 0));
      const x = rng.uniformArray(N * C, -3, 3);
      for (let c = 0; c < C; c++) x[(N - 1) * C + c] = 1000 + rng.uniformArray(1)[0];
      const w = rng.uniformArray(C, -2, 2);
      const bias = rng.uniformArray(C);
      const dout = rng.uniformArray(N * C);
      const old = { dx: rng.uniformArray(N * C), dw: rng.uniformArray(C), db: rng.uniformArray(C) };
      const X = createStorage(device, x);
      const W = createStorage(device, w);
      const Bb = createStorage(device, bias);
      const DOUT = createStorage(device, dout);
      const OUT = poisoned(device, N * C);
      const MEAN = poisoned(device, N);
      const RSTD = poisoned(device, N);
      const DX = accumulate ? createStorage(device, old.dx) : poisoned(device, N * C);
      const DW = accumulate ? createStorage(device, old.dw) : poisoned(device, C);
      const DB = accumulate ? createStorage(device, old.db) : poisoned(device, C);
      // The 67-row cases fold the row grid into 2-D (9×8 workgroups for 67 rows; surplus ones exit).
      const fold = N === 67 ? { maxWorkgroupsPerDim: 9 } : {};
      await run(device, [
        layernormForwardLaunch(device, N, C, { x: X, weight: W, bias: Bb, out: OUT, mean: MEAN, rstd: RSTD }, fold),
        layernormBackwardDxLaunch(
          device,
          N,
          C,
          { dout: DOUT, x: X, weight: W, mean: MEAN, rstd: RSTD, dx: DX },
          { accumulate, ...fold },
        ),
        layernormBackwardParamsLaunch(
          device,
          N,
          C,
          { dout: DOUT, x: X, mean: MEAN, rstd: RSTD, dweight: DW, dbias: DB },
          { accumulate },
        ),
      ]);
      const f = layernormForwardCpu(N, C, x, w, bias);
      const g = layernormBackwardCpu(N, C, x, w, dout);
      // Per-row error terms.
      const Emu = new Float64Array(N);
      const eps = new Float64Array(N);
      for (let r = 0; r < N; r++) {
        let a = 0;
        for (let c = 0; c < C; c++) a += Math.abs(x[r * C + c]);
        Emu[r] = 2 * (C + 2) * u * (a / C);
        eps[r] = ((C + 5) * u) / 2 + 4 * u + (f.rstd[r] * Emu[r]) ** 2 / 2;
      }
      const xhat = (i: number) => (x[i] - f.mean[Math.floor(i / C)]) * f.rstd[Math.floor(i / C)];
      const ex = (i: number) => {
        const r = Math.floor(i / C);
        return f.rstd[r] * Emu[r] + Math.abs(xhat(i)) * (eps[r] + 2 * u);
      };
      const tag = `${N}x${C}`;
      assertClose(`mean ${tag}`, await readF32(device, MEAN, N), f.mean, (r) => Emu[r]);
      assertClose(`rstd ${tag}`, await readF32(device, RSTD, N), f.rstd, (r) => 2 * f.rstd[r] * eps[r]);
      assertClose(`out ${tag}`, await readF32(device, OUT, N * C), f.out, (i) => {
        const c = i % C;
        return 2 * (Math.abs(w[c]) * ex(i) + 2 * u * (Math.abs(xhat(i) * w[c]) + Math.abs(bias[c])));
      });
      // dx
      const dxBound = new Float64Array(N * C);
      for (let r = 0; r < N; r++) {
        let ag = 0;
        let agx = 0;
        let sg = 0;
        let sgx = 0;
        let gex = 0;
        for (let c = 0; c < C; c++) {
          const i = r * C + c;
          const gi = dout[i] * w[c];
          ag += Math.abs(gi);
          agx += Math.abs(gi * xhat(i));
          sg += gi;
          sgx += gi * xhat(i);
          gex += Math.abs(gi) * ex(i);
        }
        const eg = (C + 1) * u * (ag / C);
        const egx = gex / C + (C + 2) * u * (agx / C);
        const mg = sg / C;
        const mgx = sgx / C;
        for (let c = 0; c < C; c++) {
          const i = r * C + c;
          const gi = Math.abs(dout[i] * w[c]);
          const xh = Math.abs(xhat(i));
          const inner =
            u * gi + eg + ex(i) * Math.abs(mgx) + xh * egx + 3 * u * (gi + Math.abs(mg) + xh * Math.abs(mgx));
          dxBound[i] = 2 * (f.rstd[r] * inner + Math.abs(g.dx[i]) * (eps[r] + u));
          if (accumulate) dxBound[i] += 2 * u * (Math.abs(old.dx[i]) + Math.abs(g.dx[i]));
        }
      }
      const dwBound = new Float64Array(C);
      const dbBound = new Float64Array(C);
      for (let c = 0; c < C; c++) {
        let a = 0;
        let b = 0;
        let d = 0;
        for (let r = 0; r < N; r++) {
          const i = r * C + c;
          a += Math.abs(dout[i]) * ex(i);
          b += Math.abs(dout[i] * xhat(i));
          d += Math.abs(dout[i]);
        }
        dwBound[c] = 2 * (a + (N + 2) * u * b) + (accumulate ? 2 * u * (Math.abs(old.dw[c]) + b) : 0);
        dbBound[c] = (N + 1) * 2 * u * d + (accumulate ? 2 * u * (Math.abs(old.db[c]) + d) : 0);
      }
      if (accumulate) {
        g.dx.forEach((_, i) => (g.dx[i] += old.dx[i]));
        g.dweight.forEach((_, c) => (g.dweight[c] += old.dw[c]));
        g.dbias.forEach((_, c) => (g.dbias[c] += old.db[c]));
      }
      assertClose(`dx ${tag}`, await readF32(device, DX, N * C), g.dx, (i) => dxBound[i]);
      assertClose(`dweight ${tag}`, await readF32(device, DW, C), g.dweight, (c) => dwBound[c]);
      assertClose(`dbias ${tag}`, await readF32(device, DB, C), g.dbias, (c) => dbBound[c]);
      [X, W, Bb, DOUT, OUT, MEAN, RSTD, DX, DW, DB].forEach((b) => b.destroy());
    });
  }
}

test('the layernorm CPU backward matches central finite differences of the CPU forward', () => {
  const N = 3;
  const C = 5;
  const rng = new Rng(69);
  const x = Float64Array.from(rng.uniformArray(N * C, -2, 2));
  const w = Float64Array.from(rng.uniformArray(C, -2, 2));
  const b = Float64Array.from(rng.uniformArray(C));
  const dout = Float64Array.from(rng.uniformArray(N * C));
  const loss = () => layernormForwardCpu(N, C, x, w, b).out.reduce((s, o, i) => s + o * dout[i], 0);
  const g = layernormBackwardCpu(N, C, x, w, dout);
  const h = 1e-5;
  for (const [name, arr, grad] of [
    ['x', x, g.dx],
    ['weight', w, g.dweight],
    ['bias', b, g.dbias],
  ] as const) {
    for (let i = 0; i < arr.length; i++) {
      const keep = arr[i];
      arr[i] = keep + h;
      const up = loss();
      arr[i] = keep - h;
      const down = loss();
      arr[i] = keep;
      const fd = (up - down) / (2 * h);
      // Truncation ~h²·|f'''|, rounding ~2^-52·|loss|/h: both far below 1e-7 at these sizes.
      assert.ok(Math.abs(fd - grad[i]) < 1e-7, `d${name}[${i}]: finite difference ${fd}, backward ${grad[i]}`);
    }
  }
});

test('layernorm launches reject a non-positive eps and short buffers', async () => {
  const device = await testDevice();
  const B = createStorage(device, 64);
  const all = { x: B, weight: B, bias: B, out: B, mean: B, rstd: B };
  assert.throws(() => layernormForwardLaunch(device, 2, 3, all, { eps: 0 }), /eps must be a positive number/);
  assert.throws(() => layernormForwardLaunch(device, 5, 5, all), /layernorm x needs 100 bytes, its binding has 64/);
  assert.equal(LAYERNORM_EPS, 1e-5);
  B.destroy();
});
