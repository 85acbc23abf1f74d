// AdamW kernel vs the f64 CPU reference (src/optim/adamw-cpu.ts) over several steps, so the step
// count in the bias correction matters. The bound is first-order error propagation through the f32
// update with u = 2^-24 (and WGSL's sqrt/division allowed up to 2.5 ulp), doubled for margin:
//   m: each step adds 3u·mag, where mag = β1·mag + (1−β1)|g| (m itself can cancel to near 0);
//   v: each step adds 3u·v (no cancellation, all terms >= 0);
//   p: decay·(previous bound) + 2u|p| + step_size·(Δm + |m|·(Δv/(2v) + 8u)) / (sqrt(v̂) + eps).
import { test } from 'node:test';
import { Rng } from '../../util/rng';
import { createStorage } from '../buffers';
import { runLaunches } from '../launch';
import { testDevice, run, readF32, assertClose, U32 as u } from '../gpu.test-helper';
import { AdamWCpu } from '../../optim/adamw-cpu';
import type { AdamWHyper } from '../../optim/adamw';
import { adamwLaunch, writeAdamWHyper } from './adamw';

const HP: AdamWHyper = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };

for (const n of [1, 13, 257, 1031]) {
  test(`AdamW on GPU follows the CPU reference for 5 steps, n=${n}`, async () => {
    const device = await testDevice();
    const rng = new Rng(41 + n);
    const p0 = rng.uniformArray(n);
    const cpuParams = Float32Array.from(p0);
    const cpu = new AdamWCpu(n);
    const P = createStorage(device, p0);
    const G = createStorage(device, 4 * n);
    const M = createStorage(device, new Float32Array(n));
    const V = createStorage(device, new Float32Array(n));
    const launch = adamwLaunch(device, n, HP, 1, { params: P, grads: G, m: M, v: V });
    const steps = 5;
    const mag = new Float64Array(n);
    const [mB, vB, pB] = [new Float64Array(n), new Float64Array(n), new Float64Array(n)];
    for (let t = 1; t <= steps; t++) {
      // Fresh gradients each step, some of them tiny so that eps matters.
      const g = rng.uniformArray(n).map((x, i) => (i % 5 === 0 ? x * 1e-7 : x));
      device.queue.writeBuffer(G, 0, g);
      writeAdamWHyper(device, launch, HP, t, n);
      await runLaunches(device, [launch]);
      cpu.step(cpuParams, g, HP);
      const stepSize = HP.lr / (1 - HP.beta1 ** t);
      const sqrtBc2 = Math.sqrt(1 - HP.beta2 ** t);
      for (let i = 0; i < n; i++) {
        mag[i] = HP.beta1 * mag[i] + (1 - HP.beta1) * Math.abs(g[i]);
        mB[i] = HP.beta1 * mB[i] + 2 * 3 * u * mag[i];
        vB[i] = HP.beta2 * vB[i] + 2 * 3 * u * cpu.v[i];
        const denom = Math.sqrt(cpu.v[i]) / sqrtBc2 + HP.eps;
        const rel = vB[i] / (2 * cpu.v[i]) + 2 * 8 * u;
        pB[i] =
          (1 - HP.lr * HP.weightDecay) * pB[i] +
          2 * 2 * u * Math.abs(cpuParams[i]) +
          (stepSize * (mB[i] + Math.abs(cpu.m[i]) * rel)) / denom;
      }
    }
    assertClose('m', await readF32(device, M, n), Float32Array.from(cpu.m), (i) => mB[i]);
    assertClose('v', await readF32(device, V, n), Float32Array.from(cpu.v), (i) => vB[i]);
    assertClose('params', await readF32(device, P, n), cpuParams, (i) => pB[i]);
    await run(device, [launch]); // destroys the launch's uniform, and checks nothing went invalid
    [P, G, M, V].forEach((b) => b.destroy());
  });
}
