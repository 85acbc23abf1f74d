// Bias add is one f32 addition per element: it must equal the f32-rounded sum exactly. Bias grad
// sums `rows` terms: bound rows·2^-23·Σ|dy|. GELU: WGSL's tanh and the polynomial are not correctly
// rounded (tanh's accuracy is inherited from sinh/cosh), so we allow 2e-6·(1 + |x|) absolute, ~30
// ulps at |x| ~ 1, well below anything training can notice; a wrong formula misses it by 1e-3 or more.
import { test } from 'node:test';
import { Rng } from '../../util/rng';
import { createStorage } from '../buffers';
import { testDevice, poisoned, run, readF32, assertClose } from '../gpu.test-helper';
import { biasAddCpu, biasGradCpu, biasAddLaunch, biasGradLaunch } from './bias';
import { geluForwardCpu, geluBackwardCpu, geluForwardLaunch, geluBackwardLaunch } from './gelu';

const SHAPES: [number, number][] = [
  [1, 1],
  [13, 11],
  [3, 257],
  [131, 7],
];

test('bias_add adds the bias to every row', async () => {
  const device = await testDevice();
  const rng = new Rng(21);
  for (const [rows, cols] of SHAPES) {
    const y = rng.uniformArray(rows * cols);
    const bias = rng.uniformArray(cols);
    const Y = createStorage(device, y);
    const Bb = createStorage(device, bias);
    await run(device, [biasAddLaunch(device, rows, cols, { bias: Bb, y: Y })]);
    const want = Float32Array.from(biasAddCpu(rows, cols, y, bias)); // f32 rounding of the exact sum
    assertClose(`y ${rows}x${cols}`, await readF32(device, Y, rows * cols), want, 0);
    [Y, Bb].forEach((b) => b.destroy());
  }
});

test('bias_grad sums the gradient over rows', async () => {
  const device = await testDevice();
  const rng = new Rng(22);
  for (const [rows, cols] of SHAPES) {
    const dy = rng.uniformArray(rows * cols);
    const DY = createStorage(device, dy);
    const G = poisoned(device, cols);
    await run(device, [biasGradLaunch(device, rows, cols, { dy: DY, dbias: G })]);
    const abs = biasGradCpu(rows, cols, dy.map(Math.abs));
    assertClose(
      `dbias ${rows}x${cols}`,
      await readF32(device, G, cols),
      biasGradCpu(rows, cols, dy),
      (i) => rows * 2 ** -23 * abs[i],
    );
    [DY, G].forEach((b) => b.destroy());
  }
});

/** Random inputs in [-6, 6] plus the extremes, where tanh saturates (and NaN-prone GPUs fail). */
function geluInputs(n: number, rng: Rng): Float32Array {
  const x = rng.uniformArray(n, -6, 6);
  const extremes = [30, -30, 1e4, -1e4, 3e38, -3e38];
  for (let i = 0; i < extremes.length && i < n - 1; i++) x[(i * 7 + 1) % n] = extremes[i];
  return x;
}

const geluBound = (x: Float32Array, scale: ArrayLike<number> | null) => (i: number) =>
  2e-6 * (1 + Math.abs(x[i])) * (scale ? Math.abs(scale[i]) : 1);

for (const n of [1, 7, 256, 1031]) {
  test(`gelu forward and backward, n=${n}`, async () => {
    const device = await testDevice();
    const rng = new Rng(23 + n);
    const x = geluInputs(n, rng);
    const dy = rng.uniformArray(n);
    const X = createStorage(device, x);
    const DY = createStorage(device, dy);
    const Y = poisoned(device, n);
    const DX = poisoned(device, n);
    await run(device, [
      geluForwardLaunch(device, n, { x: X, y: Y }),
      geluBackwardLaunch(device, n, { x: X, dy: DY, dx: DX }),
    ]);
    assertClose('gelu(x)', await readF32(device, Y, n), geluForwardCpu(x), geluBound(x, null));
    assertClose("dy·gelu'(x)", await readF32(device, DX, n), geluBackwardCpu(x, dy), geluBound(x, dy));
    [X, DY, Y, DX].forEach((b) => b.destroy());
  });
}
