// LayerNorm over rows of [rows, cols] with weight and bias; see shaders/layernorm.wgsl.
import {
  rowLanes,
  createLaunch,
  requireBytes,
  requireDims,
  packUniform,
  type Binding,
  type Launch,
  type LaunchOptions,
} from '../launch';

export const LAYERNORM_EPS = 1e-5;

export interface LayerNormOptions extends LaunchOptions {
  /** Added to the variance before the square root (PyTorch's default 1e-5). */
  eps?: number;
}

export interface AccumulateOptions extends LaunchOptions {
  /** Add into the existing gradient instead of overwriting it. */
  accumulate?: boolean;
}

/** out = (x − mean)·rstd·w + b per row, plus mean and rstd = 1/sqrt(var + eps), in float64. */
export function layernormForwardCpu(
  rows: number,
  cols: number,
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  bias: ArrayLike<number>,
  eps = LAYERNORM_EPS,
): { out: Float64Array; mean: Float64Array; rstd: Float64Array } {
  const out = new Float64Array(rows * cols);
  const mean = new Float64Array(rows);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let s = 0;
    for (let c = 0; c < cols; c++) s += x[o + c];
    const m = s / cols;
    let v = 0;
    for (let c = 0; c < cols; c++) v += (x[o + c] - m) ** 2;
    const rs = 1 / Math.sqrt(v / cols + eps);
    for (let c = 0; c < cols; c++) out[o + c] = (x[o + c] - m) * rs * weight[c] + bias[c];
    mean[r] = m;
    rstd[r] = rs;
  }
  return { out, mean, rstd };
}

/** dx, dweight, dbias of layernormForwardCpu for upstream gradient dout, in float64 (recomputes mean and rstd). */
export function layernormBackwardCpu(
  rows: number,
  cols: number,
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  dout: ArrayLike<number>,
  eps = LAYERNORM_EPS,
): { dx: Float64Array; dweight: Float64Array; dbias: Float64Array } {
  const { mean, rstd } = layernormForwardCpu(rows, cols, x, weight, new Float64Array(cols), eps);
  const dx = new Float64Array(rows * cols);
  const dweight = new Float64Array(cols);
  const dbias = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let sg = 0;
    let sgx = 0;
    for (let c = 0; c < cols; c++) {
      const xhat = (x[o + c] - mean[r]) * rstd[r];
      const g = dout[o + c] * weight[c];
      sg += g;
      sgx += g * xhat;
      dweight[c] += dout[o + c] * xhat;
      dbias[c] += dout[o + c];
    }
    for (let c = 0; c < cols; c++) {
      const xhat = (x[o + c] - mean[r]) * rstd[r];
      const g = dout[o + c] * weight[c];
      dx[o + c] = (g - sg / cols - (xhat * sgx) / cols) * rstd[r];
    }
  }
  return { dx, dweight, dbias };
}

function uniformFor(what: string, rows: number, cols: number, eps: number): ArrayBuffer {
  requireDims(what, { rows, cols });
  if (!(eps > 0) || !Number.isFinite(eps)) throw new RangeError(`${what}: eps must be a positive number, got ${eps}`);
  return packUniform([rows, cols, { f32: eps }]);
}

function rowLaunchShape(rows: number, cols: number): { constants: Record<string, number>; workgroups: number } {
  const lanes = rowLanes(cols);
  return { constants: { ROW_LANES: lanes }, workgroups: Math.ceil(rows / (64 / lanes)) };
}

/** out [rows,cols], mean [rows], rstd [rows] from x [rows,cols], weight and bias [cols]. */
export function layernormForwardLaunch(
  device: GPUDevice,
  rows: number,
  cols: number,
  b: { x: Binding; weight: Binding; bias: Binding; out: Binding; mean: Binding; rstd: Binding },
  opts: LayerNormOptions = {},
): Launch {
  const { eps = LAYERNORM_EPS, ...launchOpts } = opts;
  const uniform = uniformFor('layernorm_forward', rows, cols, eps);
  requireBytes('layernorm x', b.x, 4 * rows * cols);
  requireBytes('layernorm weight', b.weight, 4 * cols);
  requireBytes('layernorm bias', b.bias, 4 * cols);
  requireBytes('layernorm out', b.out, 4 * rows * cols);
  requireBytes('layernorm mean', b.mean, 4 * rows);
  requireBytes('layernorm rstd', b.rstd, 4 * rows);
  return createLaunch(device, {
    shader: 'layernorm',
    entry: 'layernorm_forward',
    uniform,
    bindings: { 1: b.x, 2: b.weight, 3: b.bias, 4: b.out, 5: b.mean, 6: b.rstd },
    ...rowLaunchShape(rows, cols),
    ...launchOpts,
  });
}

/** dx [rows,cols] (+)= the input gradient, from the forward's x, weight and saved mean/rstd. */
export function layernormBackwardDxLaunch(
  device: GPUDevice,
  rows: number,
  cols: number,
  b: { dout: Binding; x: Binding; weight: Binding; mean: Binding; rstd: Binding; dx: Binding },
  opts: AccumulateOptions = {},
): Launch {
  const { accumulate, ...launchOpts } = opts;
  requireDims('layernorm_backward_dx', { rows, cols });
  requireBytes('layernorm dout', b.dout, 4 * rows * cols);
  requireBytes('layernorm x', b.x, 4 * rows * cols);
  requireBytes('layernorm weight', b.weight, 4 * cols);
  requireBytes('layernorm mean', b.mean, 4 * rows);
  requireBytes('layernorm rstd', b.rstd, 4 * rows);
  requireBytes('layernorm dx', b.dx, 4 * rows * cols);
  return createLaunch(device, {
    shader: 'layernorm',
    entry: 'layernorm_backward_dx',
    uniform: packUniform([rows, cols]),
    bindings: { 1: b.x, 2: b.weight, 7: b.dout, 8: b.mean, 9: b.rstd, 10: b.dx },
    ...rowLaunchShape(rows, cols),
    constants: { ACCUMULATE: accumulate ? 1 : 0, ...rowLaunchShape(rows, cols).constants },
    ...launchOpts,
  });
}

/** dweight, dbias [cols] (+)= sums over rows (deterministic per-column reduction). */
export function layernormBackwardParamsLaunch(
  device: GPUDevice,
  rows: number,
  cols: number,
  b: { dout: Binding; x: Binding; mean: Binding; rstd: Binding; dweight: Binding; dbias: Binding },
  opts: AccumulateOptions = {},
): Launch {
  const { accumulate, ...launchOpts } = opts;
  requireDims('layernorm_backward_params', { rows, cols });
  requireBytes('layernorm dout', b.dout, 4 * rows * cols);
  requireBytes('layernorm x', b.x, 4 * rows * cols);
  requireBytes('layernorm mean', b.mean, 4 * rows);
  requireBytes('layernorm rstd', b.rstd, 4 * rows);
  requireBytes('layernorm dweight', b.dweight, 4 * cols);
  requireBytes('layernorm dbias', b.dbias, 4 * cols);
  return createLaunch(device, {
    shader: 'layernorm',
    entry: 'layernorm_backward_params',
    constants: { ACCUMULATE: accumulate ? 1 : 0 },
    uniform: packUniform([rows, cols]),
    bindings: { 1: b.x, 7: b.dout, 8: b.mean, 9: b.rstd, 11: b.dweight, 12: b.dbias },
    workgroups: Math.ceil(cols / 32),
    ...launchOpts,
  });
}
