// GELU, tanh approximation (PyTorch approximate='tanh'); see shaders/gelu.wgsl.
import {
  createLaunch,
  requireBytes,
  requireDims,
  packUniform,
  type Binding,
  type Launch,
  type LaunchOptions,
} from '../launch';

// The CPU reference, used by the kernel's tests and by the CPU models (src/model/gpt-cpu.ts, mlp-cpu.ts):
//   gelu(x) = 0.5·x·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³))).
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const C = 0.044715;

export function gelu(x: number): number {
  return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + C * x * x * x)));
}

export function geluGrad(x: number): number {
  const t = Math.tanh(SQRT_2_OVER_PI * (x + C * x * x * x));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * C * x * x);
}

export function geluForwardCpu(x: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, gelu);
}

export function geluBackwardCpu(x: ArrayLike<number>, dy: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v, i) => dy[i] * geluGrad(v));
}

export function geluForwardLaunch(
  device: GPUDevice,
  n: number,
  b: { x: Binding; y: Binding },
  opts: LaunchOptions = {},
): Launch {
  requireDims('gelu_forward', { n });
  requireBytes('gelu_forward x', b.x, 4 * n);
  requireBytes('gelu_forward y', b.y, 4 * n);
  return createLaunch(device, {
    shader: 'gelu',
    entry: 'gelu_forward',
    uniform: packUniform([n]),
    bindings: { 1: b.x, 2: b.y },
    workgroups: Math.ceil(n / 256),
    ...opts,
  });
}

/** dx = dy · gelu'(x), where x is the pre-activation saved by the forward. */
export function geluBackwardLaunch(
  device: GPUDevice,
  n: number,
  b: { x: Binding; dy: Binding; dx: Binding },
  opts: LaunchOptions = {},
): Launch {
  requireDims('gelu_backward', { n });
  requireBytes('gelu_backward x', b.x, 4 * n);
  requireBytes('gelu_backward dy', b.dy, 4 * n);
  requireBytes('gelu_backward dx', b.dx, 4 * n);
  return createLaunch(device, {
    shader: 'gelu',
    entry: 'gelu_backward',
    uniform: packUniform([n]),
    bindings: { 1: b.x, 3: b.dy, 4: b.dx },
    workgroups: Math.ceil(n / 256),
    ...opts,
  });
}
