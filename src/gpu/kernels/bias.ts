// Linear-layer bias: y[r,c] += bias[c] and dbias[c] = Σ_r dy[r,c]; see shaders/bias.wgsl.
import {
  createLaunch,
  requireBytes,
  requireDims,
  packUniform,
  type Binding,
  type Launch,
  type LaunchOptions,
} from '../launch';

export function biasAddCpu(rows: number, cols: number, y: ArrayLike<number>, bias: ArrayLike<number>): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = y[r * cols + c] + bias[c];
  return out;
}

export function biasGradCpu(rows: number, cols: number, dy: ArrayLike<number>): Float64Array {
  const g = new Float64Array(cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) g[c] += dy[r * cols + c];
  return g;
}

export function biasAddLaunch(
  device: GPUDevice,
  rows: number,
  cols: number,
  b: { bias: Binding; y: Binding },
  opts: LaunchOptions = {},
): Launch {
  requireDims('bias_add', { rows, cols });
  requireBytes('bias_add bias', b.bias, 4 * cols);
  requireBytes('bias_add y', b.y, 4 * rows * cols);
  return createLaunch(device, {
    shader: 'bias',
    entry: 'bias_add',
    uniform: packUniform([rows, cols]),
    bindings: { 1: b.bias, 2: b.y },
    workgroups: Math.ceil((rows * cols) / 256),
    ...opts,
  });
}

export function biasGradLaunch(
  device: GPUDevice,
  rows: number,
  cols: number,
  b: { dy: Binding; dbias: Binding },
  opts: LaunchOptions = {},
): Launch {
  requireDims('bias_grad', { rows, cols });
  requireBytes('bias_grad dy', b.dy, 4 * rows * cols);
  requireBytes('bias_grad dbias', b.dbias, 4 * cols);
  return createLaunch(device, {
    shader: 'bias',
    entry: 'bias_grad',
    uniform: packUniform([rows, cols]),
    bindings: { 3: b.dy, 4: b.dbias },
    workgroups: Math.ceil(cols / 256),
    ...opts,
  });
}
