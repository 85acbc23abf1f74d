// Embedding lookup (tokens [B,k] → x [B, k·D]) and its table gradient; see shaders/embedding.wgsl.
import {
  createLaunch,
  requireBytes,
  requireDims,
  packUniform,
  type Binding,
  type Launch,
  type LaunchOptions,
} from '../launch';

export interface EmbeddingDims {
  batch: number;
  context: number;
  dim: number;
  vocab: number;
}

export function embeddingForwardCpu(d: EmbeddingDims, tokens: Int32Array, table: ArrayLike<number>): Float64Array {
  const x = new Float64Array(d.batch * d.context * d.dim);
  for (let q = 0; q < d.batch * d.context; q++) {
    const t = tokens[q];
    for (let j = 0; j < d.dim; j++) x[q * d.dim + j] = table[t * d.dim + j];
  }
  return x;
}

export function embeddingBackwardCpu(d: EmbeddingDims, tokens: Int32Array, dx: ArrayLike<number>): Float64Array {
  const g = new Float64Array(d.vocab * d.dim);
  for (let q = 0; q < d.batch * d.context; q++) {
    const t = tokens[q];
    for (let j = 0; j < d.dim; j++) g[t * d.dim + j] += dx[q * d.dim + j];
  }
  return g;
}

function dimsUniform(d: EmbeddingDims): ArrayBuffer {
  requireDims('embedding', { ...d });
  return packUniform([d.batch, d.context, d.dim, d.vocab]);
}

export function embeddingForwardLaunch(
  device: GPUDevice,
  d: EmbeddingDims,
  b: { tokens: Binding; table: Binding; x: Binding },
  opts: LaunchOptions = {},
): Launch {
  const uniform = dimsUniform(d);
  const n = d.batch * d.context * d.dim;
  requireBytes('embedding tokens', b.tokens, 4 * d.batch * d.context);
  requireBytes('embedding table', b.table, 4 * d.vocab * d.dim);
  requireBytes('embedding output', b.x, 4 * n);
  return createLaunch(device, {
    shader: 'embedding',
    entry: 'embedding_forward',
    uniform,
    bindings: { 1: b.tokens, 2: b.table, 3: b.x },
    workgroups: Math.ceil(n / 256),
    ...opts,
  });
}

export function embeddingBackwardLaunch(
  device: GPUDevice,
  d: EmbeddingDims,
  b: { tokens: Binding; dx: Binding; dtable: Binding },
  opts: LaunchOptions = {},
): Launch {
  const uniform = dimsUniform(d);
  requireBytes('embedding tokens', b.tokens, 4 * d.batch * d.context);
  requireBytes('embedding dx', b.dx, 4 * d.batch * d.context * d.dim);
  requireBytes('embedding table gradient', b.dtable, 4 * d.vocab * d.dim);
  return createLaunch(device, {
    shader: 'embedding',
    entry: 'embedding_backward',
    uniform,
    bindings: { 1: b.tokens, 4: b.dx, 5: b.dtable },
    workgroups: Math.ceil((d.vocab * d.dim) / 256),
    ...opts,
  });
}
