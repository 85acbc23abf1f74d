// Softmax cross-entropy vs the f64 reference. Error budget, from WGSL's accuracy rules (exp: 3+2|x|
// ulp; log: 2^-21 absolute near 1) and f32 rounding (u = 2^-24):
//   lse:       (cols + 40)·u (sum of exps)  + 2^-21 (log)  + 4u·|lse| (max + log)
//   row loss:  lse bound + 2u·(|lse| + |l_target|)      (the subtraction of two f32 values)
//   dlogit:    (p·(lse bound + (3 + 2|l − lse|)·u + 2u·|l|) + 2u) / rows   (p = softmax probability)
// One row is shifted by +1000 so an unstable (max-free) implementation overflows and fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../util/rng';
import { createStorage } from '../buffers';
import { testDevice, poisoned, run, readF32, assertClose, U32 as u } from '../gpu.test-helper';
import { xentCpu, xentForwardLaunch, xentMeanLaunch, xentBackwardLaunch } from './xent';

const SHAPES: [number, number][] = [
  [1, 2],
  [13, 7],
  [5, 257],
  [67, 3],
  [3, 1000],
  [300, 5],
];

for (const [rows, cols] of SHAPES) {
  test(`softmax cross-entropy ${rows}x${cols}: losses, mean and dlogits`, async () => {
    const device = await testDevice();
    const rng = new Rng(31 + rows * cols);
    const logits = rng.uniformArray(rows * cols, -8, 8);
    for (let c = 0; c < cols; c++) logits[(rows - 1) * cols + c] += 1000;
    const targets = Int32Array.from({ length: rows }, () => rng.int(cols));
    const ref = xentCpu(rows, cols, logits, targets);
    const L = createStorage(device, logits);
    const T = createStorage(device, targets);
    const losses = poisoned(device, rows);
    const lse = poisoned(device, rows);
    const loss = poisoned(device, 1);
    const dl = poisoned(device, rows * cols);
    await run(device, [
      xentForwardLaunch(device, rows, cols, { logits: L, targets: T, losses, lse }),
      xentMeanLaunch(device, rows, { losses, loss }),
      xentBackwardLaunch(device, rows, cols, { logits: L, targets: T, lse, dlogits: dl }),
    ]);
    const refLse = Array.from({ length: rows }, (_, r) => ref.losses[r] + logits[r * cols + targets[r]]);
    const lseBound = (r: number) => (cols + 40) * u + 2 ** -21 + 4 * u * Math.abs(refLse[r]);
    const lossBound = (r: number) =>
      lseBound(r) + 2 * u * (Math.abs(refLse[r]) + Math.abs(logits[r * cols + targets[r]]));
    assertClose('lse', await readF32(device, lse, rows), refLse, lseBound);
    assertClose('row losses', await readF32(device, losses, rows), ref.losses, lossBound);
    let meanBound = 0;
    for (let r = 0; r < rows; r++) meanBound += lossBound(r) + rows * 2 * u * Math.abs(ref.losses[r]);
    assertClose('mean loss', await readF32(device, loss, 1), [ref.loss], meanBound / rows);
    assertClose('dlogits', await readF32(device, dl, rows * cols), ref.dlogits, (i) => {
      const r = Math.floor(i / cols);
      const l = logits[i];
      const p = Math.exp(l - refLse[r]);
      return (p * (lseBound(r) + (3 + 2 * Math.abs(l - refLse[r])) * u + 2 * u * Math.abs(l)) + 2 * u) / rows;
    });
    [L, T, losses, lse, loss, dl].forEach((b) => b.destroy());
  });
}

test('the CPU reference is stable for huge logits and its gradient rows sum to zero', () => {
  const rng = new Rng(5);
  const logits = Float64Array.from(rng.uniformArray(3 * 4), (v) => v + 5000);
  const r = xentCpu(3, 4, logits, Int32Array.from([0, 3, 1]));
  assert.ok(Number.isFinite(r.loss) && r.loss > 0, `loss ${r.loss}`);
  for (let row = 0; row < 3; row++) {
    const s = r.dlogits.slice(row * 4, row * 4 + 4).reduce((a, b) => a + b, 0);
    // Each probability carries the f64 rounding of l − lse (|l| ≈ 5000): 4 terms · 5000 · 2^-52.
    assert.ok(Math.abs(s) < 4 * 5001 * 2 ** -52, `row ${row} sums to ${s}`);
  }
});
