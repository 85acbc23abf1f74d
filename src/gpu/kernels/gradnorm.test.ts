// Global gradient norm vs the float64 reference. All terms are squares (positive), so the relative
// error of the sum is at most its summation depth times u: k squares per invocation (k = ceil(n /
// (parts·256))), 8 tree levels, k2 = ceil(partials/256) per final invocation, 8 more levels, plus
// the squaring; the square root halves that and adds its own error (WGSL: 1/inverseSqrt, ≤ ~5 ulp).
// Bound (relative): (k + k2 + 18)·u + 20u, i.e. the sum's depth undivided (×2 margin) plus 2× the
// sqrt error. Clip: scale = min(1, maxNorm/(norm + 1e-6)) carries the norm's relative error plus an
// add and a division (≤ 2.5 ulp); bound |g·scale|·2·(normBound + 8u) per element, exact when the
// scale is 1 (the norm is kept well away from maxNorm so the branch cannot flip).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../util/rng';
import { createStorage } from '../buffers';
import { testDevice, poisoned, run, readF32, assertClose, U32 as u } from '../gpu.test-helper';
import {
  gradNormCpu,
  clipScaleCpu,
  gradNormLaunches,
  gradNormScratchFloats,
  gradNormParts,
  gradClipLaunch,
} from './gradnorm';

function relBound(sizes: number[]): number {
  const k = Math.max(...sizes.map((n) => Math.ceil(n / (gradNormParts(n) * 256))));
  const k2 = Math.ceil(gradNormScratchFloats(sizes) / 256);
  return (k + k2 + 18) * u + 20 * u;
}

const LISTS: number[][] = [[1], [255], [257], [65537], [1, 7, 1000, 65537, 3]];

for (const sizes of LISTS) {
  test(`gradnorm over tensors of ${sizes.join(', ')} values, then clip`, async () => {
    const device = await testDevice();
    const rng = new Rng(71 + sizes.reduce((a, b) => a + b, 0));
    // Magnitudes differ per tensor, as they do across a model's layers.
    const grads = sizes.map((n, k) => rng.uniformArray(n, -1, 1).map((v) => v * 10 ** (k % 3)));
    const G = grads.map((g) => createStorage(device, g));
    const partials = poisoned(device, gradNormScratchFloats(sizes));
    const norm = poisoned(device, 1);
    await run(
      device,
      gradNormLaunches(
        device,
        sizes.map((n, k) => ({ grad: G[k], n })),
        { partials, norm },
      ),
    );
    const want = gradNormCpu(grads);
    const rel = relBound(sizes);
    assertClose(`norm ${sizes}`, await readF32(device, norm, 1), [want], rel * want);

    // Clip to half the norm (scales every value) and to twice the norm (leaves them unchanged).
    for (const maxNorm of [want / 2, want * 2]) {
      const C = grads.map((g) => createStorage(device, g));
      await run(
        device,
        sizes.map((n, k) => gradClipLaunch(device, n, maxNorm, { norm, grad: C[k] })),
      );
      const scale = clipScaleCpu(want, maxNorm);
      for (let k = 0; k < sizes.length; k++) {
        const got = await readF32(device, C[k], sizes[k]);
        if (scale === 1) assertClose(`unclipped ${sizes[k]}`, got, grads[k], 0);
        else
          assertClose(
            `clipped ${sizes[k]}`,
            got,
            Float64Array.from(grads[k], (g) => g * scale),
            (i) => Math.abs(grads[k][i] * scale) * 2 * (rel + 8 * u),
          );
      }
      C.forEach((b) => b.destroy());
    }
    [...G, partials, norm].forEach((b) => b.destroy());
  });
}

test('norm, clip and norm again in one submission: the clipped norm is maxNorm', async () => {
  const device = await testDevice();
  const rng = new Rng(79);
  const n = 3001;
  const g = rng.uniformArray(n, -2, 2);
  const G = createStorage(device, g);
  const partials = poisoned(device, gradNormScratchFloats([n]));
  const norm1 = poisoned(device, 1);
  const norm2 = poisoned(device, 1);
  const maxNorm = 1.5;
  await run(device, [
    ...gradNormLaunches(device, [{ grad: G, n }], { partials, norm: norm1 }),
    gradClipLaunch(device, n, maxNorm, { norm: norm1, grad: G }, { maxWorkgroupsPerDim: 4 }),
    ...gradNormLaunches(device, [{ grad: G, n }], { partials, norm: norm2 }),
  ]);
  const want = clipScaleCpu(gradNormCpu([g]), maxNorm) * gradNormCpu([g]); // maxNorm·(1 − ~1e-6/norm)
  const rel = relBound([n]);
  assertClose('norm after clipping', await readF32(device, norm2, 1), [want], want * (3 * rel + 20 * u));
  [G, partials, norm1, norm2].forEach((b) => b.destroy());
});

test('gradnorm launches check their inputs', async () => {
  const device = await testDevice();
  const B = createStorage(device, 64);
  assert.throws(() => gradNormLaunches(device, [], { partials: B, norm: B }), /at least one tensor/);
  assert.throws(
    () => gradNormLaunches(device, [{ grad: B, n: 17 }], { partials: B, norm: B }),
    /gradnorm tensor 0 needs 68 bytes/,
  );
  assert.throws(() => gradClipLaunch(device, 4, 0, { norm: B, grad: B }), /maxNorm must be a positive number/);
  assert.equal(gradNormScratchFloats([1, 256, 257, 10 ** 6]), 1 + 1 + 2 + 256);
  B.destroy();
});
