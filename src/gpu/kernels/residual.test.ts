// Residual add and accumulate are one f32 addition per element: each result must equal the f32
// rounding of the exact sum, bit for bit. A small maxWorkgroupsPerDim forces the 2-D grid fold.
import { test } from 'node:test';
import { Rng } from '../../util/rng';
import { createStorage } from '../buffers';
import { testDevice, poisoned, run, readF32, assertClose } from '../gpu.test-helper';
import { residualForwardCpu, residualForwardLaunch, residualAccumulateLaunch } from './residual';

const SIZES = [1, 7, 256, 257, 1031];

test('residual_forward writes a + b and residual_accumulate adds b in place', async () => {
  const device = await testDevice();
  const rng = new Rng(41);
  for (const n of SIZES) {
    for (const maxWorkgroupsPerDim of [undefined, 3]) {
      const a = rng.uniformArray(n, -4, 4);
      const b = rng.uniformArray(n, -4, 4);
      const A = createStorage(device, a);
      const B = createStorage(device, b);
      const OUT = poisoned(device, n);
      const opts = maxWorkgroupsPerDim ? { maxWorkgroupsPerDim } : {};
      await run(device, [
        residualForwardLaunch(device, n, { a: A, b: B, out: OUT }, opts),
        residualAccumulateLaunch(device, n, { acc: A, b: B }, opts),
      ]);
      const want = Float32Array.from(residualForwardCpu(a, b));
      const tag = `n=${n}${maxWorkgroupsPerDim ? ' (2-D grid)' : ''}`;
      assertClose(`a + b ${tag}`, await readF32(device, OUT, n), want, 0);
      assertClose(`a += b ${tag}`, await readF32(device, A, n), want, 0);
      [A, B, OUT].forEach((x) => x.destroy());
    }
  }
});
