// Global gradient L2 norm (two passes on the GPU) and norm clipping; see shaders/gradnorm.wgsl.
import {
  createLaunch,
  requireBytes,
  requireDims,
  packUniform,
  type Binding,
  type Launch,
  type LaunchOptions,
} from '../launch';

/** Workgroups (and partial sums) per tensor: one per 256 values, at most 256. */
export const GRADNORM_MAX_PARTS = 256;

/** Added to the norm before dividing, as in PyTorch's clip_grad_norm_. */
export const GRADCLIP_EPS = 1e-6;

export interface GradTensor {
  /** The gradient values (a buffer or a sub-range of one). */
  grad: Binding;
  /** Number of f32 values in it. */
  n: number;
}

export function gradNormParts(n: number): number {
  return Math.min(GRADNORM_MAX_PARTS, Math.ceil(n / 256));
}

/** Floats the `partials` scratch buffer of gradNormLaunches needs for tensors of these sizes. */
export function gradNormScratchFloats(sizes: readonly number[]): number {
  return sizes.reduce((s, n) => s + gradNormParts(n), 0);
}

/** sqrt(Σ g²) over every tensor, in float64. */
export function gradNormCpu(tensors: readonly ArrayLike<number>[]): number {
  let s = 0;
  for (const t of tensors) for (let i = 0; i < t.length; i++) s += t[i] * t[i];
  return Math.sqrt(s);
}

/** The factor grad_clip multiplies by: min(1, maxNorm / (norm + 1e-6)). */
export function clipScaleCpu(norm: number, maxNorm: number): number {
  return Math.min(1, maxNorm / (norm + GRADCLIP_EPS));
}

/**
 * Launches that write the global L2 norm of all `tensors` to norm[0]: one partial-sum launch per
 * tensor into `partials` (gradNormScratchFloats(sizes) floats), then one final reduction.
 */
export function gradNormLaunches(
  device: GPUDevice,
  tensors: readonly GradTensor[],
  b: { partials: Binding; norm: Binding },
): Launch[] {
  if (tensors.length === 0) throw new RangeError('gradnorm needs at least one tensor');
  const launches: Launch[] = [];
  let slot = 0;
  tensors.forEach((t, k) => {
    requireDims(`gradnorm tensor ${k}`, { n: t.n });
    requireBytes(`gradnorm tensor ${k}`, t.grad, 4 * t.n);
    const parts = gradNormParts(t.n);
    launches.push(
      createLaunch(device, {
        shader: 'gradnorm',
        entry: 'gradnorm_partial',
        uniform: packUniform([t.n, slot, parts]),
        bindings: { 1: t.grad, 2: b.partials },
        workgroups: parts,
      }),
    );
    slot += parts;
  });
  requireBytes('gradnorm partials', b.partials, 4 * slot);
  requireBytes('gradnorm norm', b.norm, 4);
  launches.push(
    createLaunch(device, {
      shader: 'gradnorm',
      entry: 'gradnorm_final',
      uniform: packUniform([slot]),
      bindings: { 3: b.partials, 4: b.norm },
      workgroups: 1,
    }),
  );
  return launches;
}

/** grad *= min(1, maxNorm / (norm[0] + 1e-6)) over n values, with the norm read on the GPU. */
export function gradClipLaunch(
  device: GPUDevice,
  n: number,
  maxNorm: number,
  b: { norm: Binding; grad: Binding },
  opts: LaunchOptions = {},
): Launch {
  requireDims('grad_clip', { n });
  if (!(maxNorm > 0) || !Number.isFinite(maxNorm))
    throw new RangeError(`grad_clip: maxNorm must be a positive number, got ${maxNorm}`);
  requireBytes('grad_clip norm', b.norm, 4);
  requireBytes('grad_clip grad', b.grad, 4 * n);
  return createLaunch(device, {
    shader: 'gradnorm',
    entry: 'grad_clip',
    uniform: packUniform([n, 0, 0, { f32: maxNorm }]),
    bindings: { 5: b.norm, 6: b.grad },
    workgroups: Math.ceil(n / 256),
    ...opts,
  });
}
