// Shared by the GPU tests (not shipped): a device, NaN-poisoned output buffers, and closeness checks
// that name the first element out of bounds.
import assert from 'node:assert/strict';
import { acquireNodeDevice } from './node-device';
import { createStorage, readF32 } from './buffers';
import { gpuChecked } from './error-scope';
import { runLaunches, destroyLaunch, type Launch } from './launch';

export async function testDevice(): Promise<GPUDevice> {
  return (await acquireNodeDevice()).device;
}

/** A storage buffer of n f32 filled with NaN, so any element a kernel fails to write fails the test. */
export function poisoned(device: GPUDevice, n: number, label = 'poisoned'): GPUBuffer {
  return createStorage(device, new Float32Array(Math.max(1, n)).fill(NaN), label);
}

/** Runs the launches (checking for GPU validation errors), then destroys their uniforms unless `keep`. */
export async function run(device: GPUDevice, launches: Launch[], keep = false): Promise<void> {
  await gpuChecked(device, launches.map((l) => l.label).join(', '), () => runLaunches(device, launches));
  if (!keep) launches.forEach(destroyLaunch);
}

export { readF32 };

/**
 * Asserts |actual[i] − expected[i]| <= bound(i) for all i (NaN fails), naming the first violation.
 * Returns the worst error/bound ratio (reported in docs/KERNELS.md; STARLING_PRINT_ERRORS=1 logs it).
 */
export function assertClose(
  what: string,
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  bound: number | ((i: number) => number),
): number {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const b = typeof bound === 'number' ? bound : bound(i);
    const err = Math.abs(actual[i] - expected[i]);
    if (!(err <= b)) {
      assert.fail(`${what}: element ${i} is ${actual[i]}, expected ${expected[i]} (error ${err} > bound ${b})`);
    }
    if (err > 0) worst = Math.max(worst, err / b);
  }
  if (process.env.STARLING_PRINT_ERRORS) console.log(`[error/bound] ${what}: ${worst.toExponential(2)}`);
  return worst;
}

/** Unit roundoff of f32. */
export const U32 = 2 ** -24;
