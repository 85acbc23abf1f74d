// The AdamW step on the GPU; see shaders/adamw.wgsl. The launch is built once; `writeAdamWHyper`
// refreshes its uniform (hyperparameters and bias corrections) before each step.
import { adamwStepConstants, validateAdamW, type AdamWHyper } from '../../optim/adamw';
import {
  createLaunch,
  requireBytes,
  requireDims,
  packUniform,
  type Binding,
  type Launch,
  type LaunchOptions,
} from '../launch';

export function adamwUniform(hp: AdamWHyper, t: number, n: number): ArrayBuffer {
  validateAdamW(hp);
  const { stepSize, sqrtBc2 } = adamwStepConstants(hp, t);
  const f = (v: number) => ({ f32: v });
  // Differences like 1 − β are formed here in double precision (see shaders/adamw.wgsl).
  return packUniform([
    f(hp.beta1),
    f(hp.beta2),
    f(1 - hp.beta1),
    f(1 - hp.beta2),
    f(hp.eps),
    f(1 - hp.lr * hp.weightDecay),
    f(stepSize),
    f(sqrtBc2),
    n,
  ]);
}

/** Step `t` (1-based) over n parameters; m and v start at zero and persist between steps. */
export function adamwLaunch(
  device: GPUDevice,
  n: number,
  hp: AdamWHyper,
  t: number,
  b: { params: Binding; grads: Binding; m: Binding; v: Binding },
  opts: LaunchOptions = {},
): Launch {
  requireDims('adamw', { n });
  for (const k of ['params', 'grads', 'm', 'v'] as const) requireBytes(`adamw ${k}`, b[k], 4 * n);
  return createLaunch(device, {
    shader: 'adamw',
    entry: 'adamw_step',
    uniform: adamwUniform(hp, t, n),
    bindings: { 1: b.params, 2: b.grads, 3: b.m, 4: b.v },
    workgroups: Math.ceil(n / 256),
    ...opts,
  });
}

export function writeAdamWHyper(device: GPUDevice, launch: Launch, hp: AdamWHyper, t: number, n: number): void {
  if (!launch.uniform) throw new Error(`${launch.label} has no uniform buffer`);
  device.queue.writeBuffer(launch.uniform, 0, adamwUniform(hp, t, n));
}
