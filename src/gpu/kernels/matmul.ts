// C[b] (+)= op(A[b])·op(B[b]) for b < batch, with optional transposed operands, in several kernel
// variants (shaders/matmul.wgsl, shaders/matmul_tuned.wgsl) and a selector that picks one per shape
// from the device's limits. What each variant needs and how fast it is are written down as data
// (MATMUL_VARIANTS), so the choice can be read, tested and changed in one place.
import { createLaunch, requireBytes, requireDims, packUniform, type Binding, type Launch } from '../launch';

export interface MatmulShape {
  M: number;
  N: number;
  K: number;
  /** A is stored [K, M] (op(A) = Aᵀ). */
  transA?: boolean;
  /** B is stored [N, K] (op(B) = Bᵀ). */
  transB?: boolean;
  /** C += op(A)·op(B) instead of C = op(A)·op(B). */
  accumulate?: boolean;
  /** Independent products computed by one launch (default 1: the plain product). */
  batch?: number;
  /**
   * Elements from one batch entry of A to the next (default M·K, i.e. packed). 0 reuses one A for
   * every entry. Likewise strideB (default K·N) and strideC (default M·N; must keep entries of C apart).
   */
  strideA?: number;
  strideB?: number;
  strideC?: number;
}

/** The shape with batch and strides filled in. */
export interface ResolvedMatmulShape extends Required<Omit<MatmulShape, 'transA' | 'transB' | 'accumulate'>> {
  transA: boolean;
  transB: boolean;
  accumulate: boolean;
}

export function resolveMatmulShape(s: MatmulShape): ResolvedMatmulShape {
  const batch = s.batch ?? 1;
  return {
    M: s.M,
    N: s.N,
    K: s.K,
    transA: Boolean(s.transA),
    transB: Boolean(s.transB),
    accumulate: Boolean(s.accumulate),
    batch,
    strideA: s.strideA ?? s.M * s.K,
    strideB: s.strideB ?? s.K * s.N,
    strideC: s.strideC ?? s.M * s.N,
  };
}

/** Tile of C computed by one workgroup of the simple variant (kept for existing callers). */
export const MATMUL_TILE = 64;

// ---- variants as data ------------------------------------------------------------------------------

export type MatmulVariantName = 'simple' | 'tuned' | 'tuned-scalar';

/** The device limits a matmul variant depends on (a subset of GPUSupportedLimits). */
export interface MatmulLimits {
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupSizeX: number;
  maxComputeWorkgroupSizeY: number;
  maxComputeWorkgroupsPerDimension: number;
}

/** WebGPU's guaranteed minimums: every adapter offers at least these (and devices get them by default). */
export const WEBGPU_DEFAULT_LIMITS: MatmulLimits = {
  maxComputeWorkgroupStorageSize: 16384,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxComputeWorkgroupSizeY: 256,
  maxComputeWorkgroupsPerDimension: 65535,
};

export interface MatmulVariant {
  name: MatmulVariantName;
  shader: string;
  entry: string;
  /** @workgroup_size (x, y): must match the shader. */
  workgroup: readonly [number, number];
  /** Rows × columns of C per workgroup, and the K step through workgroup memory. */
  tileM: number;
  tileN: number;
  tileK: number;
  /** Outputs held in registers by one invocation (rows × columns). */
  perThread: readonly [number, number];
  /** Bytes of var<workgroup> arrays: must match the shader. */
  workgroupStorageBytes: number;
  /**
   * Loads A and B as vec4 (16-byte) quads along their contiguous dimension: then that dimension of
   * each operand and the batch strides must be multiples of 4 (see vec4Misalignment).
   */
  vec4: boolean;
  /**
   * Speed on full tiles relative to `simple` (same device, same product), from `npm run bench -- matmul`
   * on SwiftShader (docs/BENCHMARKS.md): tuned ≈ 1.4× simple at 128³, 2.0–2.1× from 256³ to 1024³; the scalar-load
   * twin is as fast there (SwiftShader splits a vec4 load into four) and is ranked just below so that
   * aligned shapes get vec4 loads, which real GPUs do in one instruction. Real GPUs have not been
   * measured yet: there a 128×128 tile also means few workgroups for mid-sized products, which this
   * padded-work model ignores; re-run the benchmark with STARLING_GPU=vulkan and adjust these numbers.
   */
  speed: number;
}

export const MATMUL_VARIANTS: Readonly<Record<MatmulVariantName, MatmulVariant>> = {
  simple: {
    name: 'simple',
    shader: 'matmul',
    entry: 'matmul',
    workgroup: [16, 16],
    tileM: 64,
    tileN: 64,
    tileK: 16,
    perThread: [4, 4],
    workgroupStorageBytes: 2 * 1024 * 4,
    vec4: false,
    speed: 1,
  },
  tuned: {
    name: 'tuned',
    shader: 'matmul_tuned',
    entry: 'matmul_tuned',
    workgroup: [16, 16],
    tileM: 128,
    tileN: 128,
    tileK: 8,
    perThread: [8, 8],
    workgroupStorageBytes: 2 * 256 * 16,
    vec4: true,
    speed: 2,
  },
  'tuned-scalar': {
    name: 'tuned-scalar',
    shader: 'matmul_tuned',
    entry: 'matmul_tuned_scalar',
    workgroup: [16, 16],
    tileM: 128,
    tileN: 128,
    tileK: 8,
    perThread: [8, 8],
    workgroupStorageBytes: 2 * 256 * 16,
    vec4: false,
    speed: 1.8,
  },
};

/** Why `v` cannot run on a device with `limits`, or null if it fits. */
export function limitsMisfit(v: MatmulVariant, limits: MatmulLimits): string | null {
  const [x, y] = v.workgroup;
  if (v.workgroupStorageBytes > limits.maxComputeWorkgroupStorageSize) {
    return `needs ${v.workgroupStorageBytes} bytes of workgroup storage, the device allows ${limits.maxComputeWorkgroupStorageSize}`;
  }
  if (x * y > limits.maxComputeInvocationsPerWorkgroup) {
    return `needs ${x * y} invocations per workgroup, the device allows ${limits.maxComputeInvocationsPerWorkgroup}`;
  }
  if (x > limits.maxComputeWorkgroupSizeX || y > limits.maxComputeWorkgroupSizeY) {
    return `needs a ${x}×${y} workgroup, the device allows ${limits.maxComputeWorkgroupSizeX}×${limits.maxComputeWorkgroupSizeY}`;
  }
  return null;
}

/** Why the vec4 path cannot load this shape, or null if it can. */
export function vec4Misalignment(shape: MatmulShape): string | null {
  const s = resolveMatmulShape(shape);
  const need: [string, number][] = [
    [s.transA ? 'M (A is stored [K, M])' : 'K (A is stored [M, K])', s.transA ? s.M : s.K],
    [s.transB ? 'K (B is stored [N, K])' : 'N (B is stored [K, N])', s.transB ? s.K : s.N],
  ];
  if (s.batch > 1) need.push(['strideA', s.strideA], ['strideB', s.strideB]);
  const bad = need.filter(([, v]) => v % 4 !== 0);
  return bad.length ? `vec4 loads need multiples of 4: ${bad.map(([n, v]) => `${n} = ${v}`).join(', ')}` : null;
}

/** Workgroups per dimension of `v`'s grid for the shape: [x (columns), y (rows), z (batch)]. */
export function matmulGrid(v: MatmulVariant, shape: MatmulShape): [number, number, number] {
  const s = resolveMatmulShape(shape);
  return [Math.ceil(s.N / v.tileN), Math.ceil(s.M / v.tileM), s.batch];
}

/** Why `v` cannot compute this shape on a device with `limits`, or null if it can. */
export function matmulVariantSupport(v: MatmulVariant, limits: MatmulLimits, shape: MatmulShape): string | null {
  const misfit = limitsMisfit(v, limits);
  if (misfit) return misfit;
  if (v.vec4) {
    const mis = vec4Misalignment(shape);
    if (mis) return mis;
  }
  const grid = matmulGrid(v, shape);
  const worst = Math.max(...grid);
  if (worst > limits.maxComputeWorkgroupsPerDimension) {
    return `needs a ${grid.join('×')} grid, the device allows ${limits.maxComputeWorkgroupsPerDimension} workgroups per dimension`;
  }
  return null;
}

/** Multiply-adds `v` performs for the shape, padding included (partial tiles cost as much as full ones). */
export function paddedWork(v: MatmulVariant, shape: MatmulShape): number {
  const s = resolveMatmulShape(shape);
  const [gx, gy] = matmulGrid(v, s);
  return s.batch * gy * v.tileM * gx * v.tileN * Math.ceil(s.K / v.tileK) * v.tileK;
}

/**
 * The variant to use for `shape` on a device with `limits`: among the variants that fit the limits
 * and the shape, the one with the least padded work per unit of speed (ties go to the earlier in
 * MATMUL_VARIANTS, i.e. the simpler). Large products get the tuned kernel (vec4 when aligned, else its
 * scalar-load twin); small or thin ones (64³, a row vector), where a 128×128 tile is mostly padding,
 * get the simple one. Throws if nothing fits, naming each variant's reason.
 */
export function chooseMatmulVariant(limits: MatmulLimits, shape: MatmulShape): MatmulVariant {
  let best: MatmulVariant | undefined;
  let bestCost = Infinity;
  const reasons: string[] = [];
  for (const v of Object.values(MATMUL_VARIANTS)) {
    const why = matmulVariantSupport(v, limits, shape);
    if (why) {
      reasons.push(`${v.name}: ${why}`);
      continue;
    }
    const cost = paddedWork(v, shape) / v.speed;
    if (cost < bestCost) {
      best = v;
      bestCost = cost;
    }
  }
  if (!best) throw new RangeError(`no matmul variant can run ${describeShape(shape)} on this device (${reasons.join('; ')})`);
  return best;
}

function describeShape(shape: MatmulShape): string {
  const s = resolveMatmulShape(shape);
  return `${s.batch > 1 ? `${s.batch}× ` : ''}${s.M}×${s.N}×${s.K}${s.transA ? ' transA' : ''}${s.transB ? ' transB' : ''}`;
}

// ---- CPU reference and launches --------------------------------------------------------------------

/** Float64 reference, batched like the kernels; entries of C outside the batch's matrices are left 0. */
export function matmulCpu(shape: MatmulShape, a: ArrayLike<number>, b: ArrayLike<number>, c?: ArrayLike<number>): Float64Array {
  const s = resolveMatmulShape(shape);
  const { M, N, K } = s;
  const out = new Float64Array(s.batch === 0 ? 0 : (s.batch - 1) * s.strideC + M * N);
  for (let e = 0; e < s.batch; e++) {
    const oa = e * s.strideA;
    const ob = e * s.strideB;
    const oc = e * s.strideC;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let acc = s.accumulate && c ? c[oc + i * N + j] : 0;
        for (let k = 0; k < K; k++) {
          const av = s.transA ? a[oa + k * M + i] : a[oa + i * K + k];
          const bv = s.transB ? b[ob + j * K + k] : b[ob + k * N + j];
          acc += av * bv;
        }
        out[oc + i * N + j] = acc;
      }
    }
  }
  return out;
}

/** Elements each operand's binding must span for the shape. */
export function matmulElements(shape: MatmulShape): { a: number; b: number; c: number } {
  const s = resolveMatmulShape(shape);
  const span = (stride: number, size: number) => (s.batch - 1) * stride + size;
  return { a: span(s.strideA, s.M * s.K), b: span(s.strideB, s.K * s.N), c: span(s.strideC, s.M * s.N) };
}

export interface MatmulLaunchOptions {
  /** Force a variant (tests, benchmarks); by default chooseMatmulVariant picks one from device.limits. */
  variant?: MatmulVariantName;
}

/** Throws a RangeError unless batch and strides make sense (C entries must not overlap). */
function checkBatch(s: ResolvedMatmulShape): void {
  for (const [k, v] of Object.entries({ batch: s.batch, strideA: s.strideA, strideB: s.strideB, strideC: s.strideC })) {
    if (!Number.isInteger(v) || v < (k === 'batch' ? 1 : 0) || v >= 2 ** 32) {
      throw new RangeError(`matmul: ${k} must be an integer >= ${k === 'batch' ? 1 : 0}, got ${v}`);
    }
  }
  if (s.batch > 1 && s.strideC < s.M * s.N) {
    throw new RangeError(`matmul: strideC ${s.strideC} would overlap batch entries of C (M·N = ${s.M * s.N})`);
  }
}

/**
 * A launch computing C (+)= op(A)·op(B) for the shape (batched if shape.batch > 1). Bindings must
 * start 16-byte aligned for the vec4 variant (WebGPU storage offsets are multiples of 256, so any
 * whole buffer or aligned sub-range is). The variant is chosen from device.limits unless forced.
 */
export function matmulLaunch(
  device: GPUDevice,
  shape: MatmulShape,
  b: { a: Binding; b: Binding; c: Binding },
  opts: MatmulLaunchOptions = {},
): Launch {
  requireDims('matmul', { M: shape.M, N: shape.N, K: shape.K });
  const s = resolveMatmulShape(shape);
  checkBatch(s);
  const el = matmulElements(s);
  requireBytes('matmul A', b.a, 4 * el.a);
  requireBytes('matmul B', b.b, 4 * el.b);
  requireBytes('matmul C', b.c, 4 * el.c);
  let v: MatmulVariant;
  if (opts.variant) {
    v = MATMUL_VARIANTS[opts.variant];
    const why = matmulVariantSupport(v, device.limits, s);
    if (why) throw new RangeError(`matmul variant "${v.name}" cannot run ${describeShape(s)}: ${why}`);
  } else {
    v = chooseMatmulVariant(device.limits, s);
  }
  const [gx, gy, gz] = matmulGrid(v, s);
  const launch = createLaunch(device, {
    shader: v.shader,
    entry: v.entry,
    constants: { TRANS_A: s.transA ? 1 : 0, TRANS_B: s.transB ? 1 : 0, ACCUMULATE: s.accumulate ? 1 : 0 },
    uniform: packUniform([s.M, s.N, s.K, s.batch, s.strideA, s.strideB, s.strideC, 0]),
    bindings: { 1: b.a, 2: b.b, 3: b.c },
    workgroups: [gx, gy],
  });
  // createLaunch builds 2-D grids; the batch runs along z (checked against the limit above).
  return { ...launch, label: `${launch.label}[${v.name}]`, grid: [gx, gy, gz] };
}
