// Softmax cross-entropy (mean over rows) and its logits gradient; see shaders/xent.wgsl.
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

/** Mean loss and dlogits = (softmax − onehot)/rows, in double precision. */
export function xentCpu(
  rows: number,
  cols: number,
  logits: ArrayLike<number>,
  targets: Int32Array,
): { loss: number; losses: Float64Array; dlogits: Float64Array } {
  const losses = new Float64Array(rows);
  const dlogits = new Float64Array(rows * cols);
  let total = 0;
  for (let r = 0; r < rows; r++) {
    let mx = -Infinity;
    for (let c = 0; c < cols; c++) mx = Math.max(mx, logits[r * cols + c]);
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.exp(logits[r * cols + c] - mx);
    const lse = mx + Math.log(s);
    losses[r] = lse - logits[r * cols + targets[r]];
    total += losses[r];
    for (let c = 0; c < cols; c++) {
      dlogits[r * cols + c] = (Math.exp(logits[r * cols + c] - lse) - (c === targets[r] ? 1 : 0)) / rows;
    }
  }
  return { loss: total / rows, losses, dlogits };
}

function check(rows: number, cols: number, b: { logits: Binding; targets: Binding }): ArrayBuffer {
  requireDims('xent', { rows, cols });
  requireBytes('xent logits', b.logits, 4 * rows * cols);
  requireBytes('xent targets', b.targets, 4 * rows);
  return packUniform([rows, cols]);
}

/** Per-row losses and log-sum-exp (kept for the backward). */
export function xentForwardLaunch(
  device: GPUDevice,
  rows: number,
  cols: number,
  b: { logits: Binding; targets: Binding; losses: Binding; lse: Binding },
  opts: LaunchOptions = {},
): Launch {
  const uniform = check(rows, cols, b);
  const lanes = rowLanes(cols);
  requireBytes('xent losses', b.losses, 4 * rows);
  requireBytes('xent lse', b.lse, 4 * rows);
  return createLaunch(device, {
    shader: 'xent',
    entry: 'xent_forward',
    uniform,
    bindings: { 1: b.logits, 2: b.targets, 3: b.losses, 4: b.lse },
    constants: { ROW_LANES: lanes },
    workgroups: Math.ceil(rows / (64 / lanes)),
    ...opts,
  });
}

/** loss[0] = mean of the per-row losses. */
export function xentMeanLaunch(device: GPUDevice, rows: number, b: { losses: Binding; loss: Binding }): Launch {
  requireDims('xent_mean', { rows });
  requireBytes('xent_mean losses', b.losses, 4 * rows);
  requireBytes('xent_mean loss', b.loss, 4);
  return createLaunch(device, {
    shader: 'xent',
    entry: 'xent_mean',
    uniform: packUniform([rows, 1]),
    bindings: { 7: b.losses, 8: b.loss },
    workgroups: 1,
  });
}

export function xentBackwardLaunch(
  device: GPUDevice,
  rows: number,
  cols: number,
  b: { logits: Binding; targets: Binding; lse: Binding; dlogits: Binding },
  opts: LaunchOptions = {},
): Launch {
  const uniform = check(rows, cols, b);
  requireBytes('xent lse', b.lse, 4 * rows);
  requireBytes('xent dlogits', b.dlogits, 4 * rows * cols);
  return createLaunch(device, {
    shader: 'xent',
    entry: 'xent_backward',
    uniform,
    bindings: { 1: b.logits, 2: b.targets, 5: b.lse, 6: b.dlogits },
    workgroups: Math.ceil((rows * cols) / 256),
    ...opts,
  });
}
