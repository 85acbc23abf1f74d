// Residual add (out = a + b) and in-place accumulate (acc += b); see shaders/residual.wgsl.
import {
  createLaunch,
  requireBytes,
  requireDims,
  packUniform,
  type Binding,
  type Launch,
  type LaunchOptions,
} from '../launch';

export function residualForwardCpu(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] + b[i];
  return out;
}

/** out = a + b over n elements. `out` must be a different buffer from `a` and `b`. */
export function residualForwardLaunch(
  device: GPUDevice,
  n: number,
  b: { a: Binding; b: Binding; out: Binding },
  opts: LaunchOptions = {},
): Launch {
  requireDims('residual_forward', { n });
  requireBytes('residual_forward a', b.a, 4 * n);
  requireBytes('residual_forward b', b.b, 4 * n);
  requireBytes('residual_forward out', b.out, 4 * n);
  return createLaunch(device, {
    shader: 'residual',
    entry: 'residual_forward',
    uniform: packUniform([n]),
    bindings: { 1: b.a, 2: b.b, 3: b.out },
    workgroups: Math.ceil(n / 256),
    ...opts,
  });
}

/** acc += b over n elements, in place (gradient accumulation; `acc` must not alias `b`). */
export function residualAccumulateLaunch(
  device: GPUDevice,
  n: number,
  b: { acc: Binding; b: Binding },
  opts: LaunchOptions = {},
): Launch {
  requireDims('residual_accumulate', { n });
  requireBytes('residual_accumulate acc', b.acc, 4 * n);
  requireBytes('residual_accumulate b', b.b, 4 * n);
  return createLaunch(device, {
    shader: 'residual',
    entry: 'residual_accumulate',
    uniform: packUniform([n]),
    bindings: { 2: b.b, 4: b.acc },
    workgroups: Math.ceil(n / 256),
    ...opts,
  });
}
