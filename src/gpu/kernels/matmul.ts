// C[b] (+)= op(A[b])·op(B[b]) for b < batch, with optional transposed operands, in several kernel
// variants (shaders/matmul.wgsl, shaders/matmul_tuned.wgsl, shaders/matmul_direct.wgsl) and a
// selector that picks one per shape from the device's limits. What each variant needs and how fast
// it is are written down as data (MATMUL_VARIANTS), so the choice can be read, tested and changed in
// one place. matmulLaunch builds one launch; matmulLaunches may also split a long K across
// workgroups (partial products in a caller's scratch buffer, summed in order by a second launch).
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

export type MatmulVariantName =
  'simple' | 'tuned' | 'tuned-scalar' | 'direct-64' | 'direct-32' | 'direct-128' | 'direct-64x16';

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
  /** @workgroup_size (x, y): must match the shader, or set its overrides WX and WY (see `overrides`). */
  workgroup: readonly [number, number];
  /** Override constants that shape the kernel (workgroup size WX, WY of matmul_direct). */
  overrides?: Readonly<Record<string, number>>;
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
   * Multiply-adds per unit time relative to `simple`, once a workgroup is running (its inner loop), and
   * the fixed cost of one workgroup in multiply-adds of `simple` (see matmulCost). Fitted with Node's
   * WebGPU on SwiftShader (2 cores; CPU time of 128×128 products with K = 16 and 256 in batches of 2 and
   * 16, and 512³/1024³; docs/KERNELS.md, matmul section): simple ≈ 8.9 ns per multiply-add plus ≈ 4.7 ms
   * per workgroup; tuned ≈ 5.0 ns (1.8×) plus ≈ 6 ms; direct ≈ 4.2 ns (2.1×) plus ≈ 4 multiply-adds per
   * output of its tile (setting up and storing 64 accumulators per invocation). The kernels with
   * workgroup barriers pay a workgroup's fixed cost in coroutine switches on SwiftShader, which is what
   * made them 3–8× slower than the direct kernel on the thin products of a GPT step. tuned is ranked
   * above its scalar-load twin (as fast on SwiftShader, which splits a vec4 load into four) so that
   * aligned shapes would get vec4 loads, which real GPUs do in one instruction. Real GPUs have not been
   * measured: re-run `npm run bench -- matmul` with STARLING_GPU=vulkan and refit these numbers.
   */
  speed: number;
  workgroupCost: number;
  /** Can split K across workgroups (workgroup_id.z = batch entry · splits + split; matmulLaunches only). */
  splitK: boolean;
}

type DirectName = 'direct-64' | 'direct-32' | 'direct-128' | 'direct-64x16';

/**
 * shaders/matmul_direct.wgsl at four workgroup shapes (8×8 outputs per invocation, or 8×4 for the
 * 16-column tile; no workgroup memory; K split optional). direct-64 comes first: on a tie (full
 * tiles) it wins, its 64 invocations suiting GPUs' 32- or 64-wide SIMD; direct-32 (16 invocations)
 * wins where it gives more workgroups to run at once (thin outputs, long K), direct-128 where its tile
 * fits the output better, direct-64x16 on outputs 16 wide or narrower (rank-16 factors), where the
 * square tiles would be mostly padding.
 */
function directVariants(): Record<DirectName, MatmulVariant> {
  const make = (name: DirectName, wx: number, wy: number, cols: number, speed: number): MatmulVariant => ({
    name,
    shader: 'matmul_direct',
    entry: 'matmul_direct',
    workgroup: [wx, wy],
    overrides: { WX: wx, WY: wy, COLS: cols },
    tileM: 8 * wy,
    tileN: cols * wx,
    tileK: 1,
    perThread: [8, cols],
    workgroupStorageBytes: 0,
    vec4: false,
    speed,
    workgroupCost: 4 * 8 * wy * cols * wx,
    splitK: true,
  });
  return {
    'direct-64': make('direct-64', 8, 8, 8, 2.2),
    'direct-32': make('direct-32', 4, 4, 8, 2.2),
    'direct-128': make('direct-128', 16, 16, 8, 2.2),
    'direct-64x16': make('direct-64x16', 4, 8, 4, 1.6),
  };
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
    workgroupCost: 500_000,
    splitK: false,
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
    workgroupCost: 650_000,
    splitK: false,
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
    workgroupCost: 650_000,
    splitK: false,
  },
  ...directVariants(),
};

/** Why `v` cannot run on a device with `limits`, or null if it fits. */
export function limitsMisfit(v: MatmulVariant, limits: MatmulLimits): string | null {
  const [x, y] = v.workgroup;
  if (v.workgroupStorageBytes > limits.maxComputeWorkgroupStorageSize) {
    return (
      `needs ${v.workgroupStorageBytes} bytes of workgroup storage, ` +
      `the device allows ${limits.maxComputeWorkgroupStorageSize}`
    );
  }
  if (x * y > limits.maxComputeInvocationsPerWorkgroup) {
    return `needs ${x * y} invocations per workgroup, the device allows ${limits.maxComputeInvocationsPerWorkgroup}`;
  }
  if (x > limits.maxComputeWorkgroupSizeX || y > limits.maxComputeWorkgroupSizeY) {
    return (
      `needs a ${x}×${y} workgroup, the device allows ` +
      `${limits.maxComputeWorkgroupSizeX}×${limits.maxComputeWorkgroupSizeY}`
    );
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

/** How a product is split along K: `splits` workgroups per output tile, each over `kChunk` steps of k. */
export interface MatmulSplit {
  splits: number;
  kChunk: number;
}

const NO_SPLIT = (shape: MatmulShape): MatmulSplit => ({ splits: 1, kChunk: shape.K });

/** `splits` chunks of K, each a whole number of `v.tileK` steps, none empty (so possibly fewer than asked). */
export function matmulSplit(v: MatmulVariant, shape: MatmulShape, splits: number): MatmulSplit {
  if (!Number.isInteger(splits) || splits < 1)
    throw new RangeError(`matmul: splits must be an integer >= 1, got ${splits}`);
  const K = shape.K;
  const kChunk = Math.ceil(Math.ceil(K / splits) / v.tileK) * v.tileK;
  return { splits: Math.ceil(K / kChunk), kChunk };
}

/** Workgroups per dimension of `v`'s grid for the shape: [x (columns), y (rows), z (batch · splits)]. */
export function matmulGrid(
  v: MatmulVariant,
  shape: MatmulShape,
  split: MatmulSplit = NO_SPLIT(shape),
): [number, number, number] {
  const s = resolveMatmulShape(shape);
  return [Math.ceil(s.N / v.tileN), Math.ceil(s.M / v.tileM), s.batch * split.splits];
}

/** Why `v` cannot compute this shape (split as given) on a device with `limits`, or null if it can. */
export function matmulVariantSupport(
  v: MatmulVariant,
  limits: MatmulLimits,
  shape: MatmulShape,
  split: MatmulSplit = NO_SPLIT(shape),
): string | null {
  const misfit = limitsMisfit(v, limits);
  if (misfit) return misfit;
  if (v.vec4) {
    const mis = vec4Misalignment(shape);
    if (mis) return mis;
  }
  if (split.splits > 1) {
    if (!v.splitK) return 'cannot split K';
    const reduceGroups = Math.ceil((shape.M * shape.N) / REDUCE_WORKGROUP);
    if (reduceGroups > limits.maxComputeWorkgroupsPerDimension) {
      return (
        `the split-K reduction needs ${reduceGroups} workgroups, the device ` +
        `allows ${limits.maxComputeWorkgroupsPerDimension} per dimension`
      );
    }
  }
  const grid = matmulGrid(v, shape, split);
  const worst = Math.max(...grid);
  if (worst > limits.maxComputeWorkgroupsPerDimension) {
    return (
      `needs a ${grid.join('×')} grid, the device allows ` +
      `${limits.maxComputeWorkgroupsPerDimension} workgroups per dimension`
    );
  }
  return null;
}

/** Multiply-adds `v` performs for the shape, padding included (partial tiles cost as much as full ones). */
export function paddedWork(v: MatmulVariant, shape: MatmulShape, split: MatmulSplit = NO_SPLIT(shape)): number {
  const s = resolveMatmulShape(shape);
  const [gx, gy, gz] = matmulGrid(v, s, split);
  return gz * gy * v.tileM * gx * v.tileN * Math.ceil(split.kChunk / v.tileK) * v.tileK;
}

/**
 * Workgroups the cost model assumes run at once. SwiftShader runs one workgroup per CPU core (2 on
 * the machine the speeds were measured on); a GPU runs far more, which only makes small tiles and
 * split K more attractive there than this model says.
 */
export const MATMUL_PARALLEL_WORKGROUPS = 2;

/**
 * Split-K costs in multiply-adds of `simple`: per element of C per partial product (written by the
 * first launch, read and added by the second) and for the second launch itself. Measured on
 * SwiftShader: ≈ 4.4 per element-partial; the launch is lost in the noise (≤ 0.2 ms).
 */
export const SPLIT_K_ELEMENT_COST = 6;
export const SPLIT_K_LAUNCH_COST = 20_000;

/** Splits the chooser tries for split-capable variants (matmulLaunches with a scratch buffer). */
export const MATMUL_SPLITS: readonly number[] = [2, 4, 8, 16];

/**
 * Estimated time of `v` on the shape, in multiply-adds of `simple` on full tiles: workgroups run
 * MATMUL_PARALLEL_WORKGROUPS at a time, so a grid of w workgroups takes ceil(w / P) rounds of one
 * workgroup's time, which is its padded tile work / speed plus the variant's fixed workgroupCost.
 * A split adds the partials' traffic and the reducing launch.
 */
export function matmulCost(v: MatmulVariant, shape: MatmulShape, split: MatmulSplit = NO_SPLIT(shape)): number {
  const s = resolveMatmulShape(shape);
  const [gx, gy, gz] = matmulGrid(v, s, split);
  const groups = gx * gy * gz;
  const perGroup = v.workgroupCost + (v.tileM * v.tileN * Math.ceil(split.kChunk / v.tileK) * v.tileK) / v.speed;
  let cost = Math.ceil(groups / MATMUL_PARALLEL_WORKGROUPS) * perGroup;
  if (split.splits > 1) {
    cost +=
      SPLIT_K_LAUNCH_COST +
      (SPLIT_K_ELEMENT_COST * (split.splits + 1) * s.batch * s.M * s.N) / MATMUL_PARALLEL_WORKGROUPS;
  }
  return cost;
}

/** A variant and how it splits K; scratchBytes is what the partial products need (0 unsplit). */
export interface MatmulPlan extends MatmulSplit {
  variant: MatmulVariant;
  scratchBytes: number;
  /** matmulCost of the plan. */
  cost: number;
}

export interface MatmulPlanOptions {
  /** Only this variant (else every variant in MATMUL_VARIANTS). */
  variant?: MatmulVariantName;
  /** Only this many splits (1: no split). By default 1, or any of MATMUL_SPLITS that fits scratchBytes. */
  splits?: number;
  /** Bytes of scratch available for partial products (default 0: no split). */
  scratchBytes?: number;
}

/** Bytes of scratch a split plan needs: batch · splits packed M×N partial products. */
export function splitScratchBytes(shape: MatmulShape, split: MatmulSplit): number {
  const s = resolveMatmulShape(shape);
  return split.splits > 1 ? 4 * s.batch * split.splits * s.M * s.N : 0;
}

/**
 * The cheapest way (by matmulCost) to run `shape` on a device with `limits`: among the variants that
 * fit the limits and the shape, unsplit or (when scratch allows, for variants that can) split along K.
 * Ties go to the earlier variant in MATMUL_VARIANTS and to fewer splits. Throws if nothing fits,
 * naming each variant's reason.
 */
export function planMatmul(limits: MatmulLimits, shape: MatmulShape, opts: MatmulPlanOptions = {}): MatmulPlan {
  const variants = opts.variant ? [MATMUL_VARIANTS[opts.variant]] : Object.values(MATMUL_VARIANTS);
  const scratch = opts.scratchBytes ?? 0;
  let best: MatmulPlan | undefined;
  const reasons: string[] = [];
  for (const v of variants) {
    const candidates = opts.splits !== undefined ? [opts.splits] : [1, ...(v.splitK ? MATMUL_SPLITS : [])];
    let why: string | null = null;
    let fits = false;
    for (const want of candidates) {
      const split = matmulSplit(v, shape, want);
      if (opts.splits === undefined && want > 1 && split.splits < want) continue; // K too short for this many
      const bytes = splitScratchBytes(shape, split);
      const no =
        matmulVariantSupport(v, limits, shape, split) ??
        (bytes > scratch ? `${split.splits} splits need ${bytes} bytes of scratch, ${scratch} given` : null);
      if (no) {
        why ??= no;
        continue;
      }
      fits = true;
      const cost = matmulCost(v, shape, split);
      if (!best || cost < best.cost) best = { variant: v, ...split, scratchBytes: bytes, cost };
    }
    if (!fits) reasons.push(`${v.name}: ${why}`);
  }
  if (!best)
    throw new RangeError(`no matmul variant can run ${describeShape(shape)} on this device (${reasons.join('; ')})`);
  return best;
}

/**
 * The variant matmulLaunch uses for `shape` on a device with `limits` (one launch, no split): the
 * cheapest by matmulCost (see planMatmul). Throws if nothing fits, naming each variant's reason.
 */
export function chooseMatmulVariant(limits: MatmulLimits, shape: MatmulShape): MatmulVariant {
  return planMatmul(limits, shape).variant;
}

/**
 * Bytes of scratch matmulLaunches would use for `shape` given unlimited scratch (0 when the best plan
 * does not split K). Callers running several products in sequence can share one buffer of the largest.
 */
export function matmulScratchBytes(limits: MatmulLimits, shape: MatmulShape): number {
  return planMatmul(limits, shape, { scratchBytes: Infinity }).scratchBytes;
}

function describeShape(shape: MatmulShape): string {
  const s = resolveMatmulShape(shape);
  const batch = s.batch > 1 ? `${s.batch}× ` : '';
  return `${batch}${s.M}×${s.N}×${s.K}${s.transA ? ' transA' : ''}${s.transB ? ' transB' : ''}`;
}

// ---- CPU reference and launches --------------------------------------------------------------------

/** Float64 reference, batched like the kernels; entries of C outside the batch's matrices are left 0. */
export function matmulCpu(
  shape: MatmulShape,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  c?: ArrayLike<number>,
): Float64Array {
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

export interface MatmulLaunchesOptions extends MatmulLaunchOptions {
  /** Force the number of K splits (tests, benchmarks; needs scratch when > 1); by default planMatmul picks. */
  splits?: number;
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

/** Invocations per workgroup of matmul_splitk_reduce. */
const REDUCE_WORKGROUP = 64;

const bindingBytes = (b: Binding): number => ('buffer' in b ? (b.size ?? b.buffer.size - (b.offset ?? 0)) : b.size);

function checkedShape(shape: MatmulShape, b: { a: Binding; b: Binding; c: Binding }): ResolvedMatmulShape {
  requireDims('matmul', { M: shape.M, N: shape.N, K: shape.K });
  const s = resolveMatmulShape(shape);
  checkBatch(s);
  const el = matmulElements(s);
  requireBytes('matmul A', b.a, 4 * el.a);
  requireBytes('matmul B', b.b, 4 * el.b);
  requireBytes('matmul C', b.c, 4 * el.c);
  return s;
}

function buildLaunches(
  device: GPUDevice,
  s: ResolvedMatmulShape,
  plan: MatmulPlan,
  b: { a: Binding; b: Binding; c: Binding; scratch?: Binding },
): Launch[] {
  const v = plan.variant;
  const split = plan.splits > 1;
  const [gx, gy, gz] = matmulGrid(v, s, plan);
  const uniform = [
    s.M,
    s.N,
    s.K,
    s.batch,
    s.strideA,
    s.strideB,
    split ? s.M * s.N : s.strideC,
    plan.splits,
    plan.kChunk,
    0,
    0,
    0,
  ];
  const launch = createLaunch(device, {
    shader: v.shader,
    entry: v.entry,
    constants: {
      TRANS_A: s.transA ? 1 : 0,
      TRANS_B: s.transB ? 1 : 0,
      ACCUMULATE: s.accumulate && !split ? 1 : 0,
      ...v.overrides,
    },
    // The older kernels read the first 8 fields (their _pad is the 8th).
    uniform: packUniform(v.splitK ? uniform : uniform.slice(0, 7).concat(0)),
    bindings: { 1: b.a, 2: b.b, 3: split ? b.scratch! : b.c },
    workgroups: [gx, gy],
  });
  // createLaunch builds 2-D grids; batch entries (times splits) run along z (checked against the limit).
  const main = {
    ...launch,
    label: `${launch.label}[${v.name}${split ? `, ${plan.splits} splits` : ''}]`,
    grid: [gx, gy, gz] as const,
  };
  if (!split) return [main];
  const reduce = createLaunch(device, {
    shader: v.shader,
    entry: 'matmul_splitk_reduce',
    constants: { ACCUMULATE: s.accumulate ? 1 : 0 },
    uniform: packUniform([s.M, s.N, s.K, s.batch, 0, 0, s.strideC, plan.splits, plan.kChunk, 0, 0, 0]),
    bindings: { 1: b.scratch!, 3: b.c },
    workgroups: [Math.ceil((s.M * s.N) / REDUCE_WORKGROUP), s.batch],
  });
  return [main, reduce];
}

function forcedPlan(
  device: GPUDevice,
  s: ResolvedMatmulShape,
  opts: MatmulLaunchesOptions,
  scratchBytes: number,
): MatmulPlan {
  const forced = opts.variant !== undefined || opts.splits !== undefined;
  try {
    return planMatmul(device.limits, s, { variant: opts.variant, splits: opts.splits, scratchBytes });
  } catch (e) {
    if (!forced || !(e instanceof RangeError)) throw e;
    const v = opts.variant ? MATMUL_VARIANTS[opts.variant] : undefined;
    const splits = (opts.splits ?? 1) > 1 ? ` with ${opts.splits} splits` : '';
    const what = `${v ? `variant "${v.name}"` : 'matmul'}${splits}`;
    const split = v ? matmulSplit(v, s, opts.splits ?? 1) : undefined;
    const why =
      v && split
        ? (matmulVariantSupport(v, device.limits, s, split) ??
          `${split.splits} splits need ${splitScratchBytes(s, split)} bytes of scratch, ${scratchBytes} given`)
        : e.message;
    throw new RangeError(`${what} cannot run ${describeShape(s)}: ${why}`);
  }
}

/**
 * A launch computing C (+)= op(A)·op(B) for the shape (batched if shape.batch > 1). Bindings must
 * start 16-byte aligned for the vec4 variant (WebGPU storage offsets are multiples of 256, so any
 * whole buffer or aligned sub-range is). The variant is chosen from device.limits unless forced.
 * One launch never splits K; matmulLaunches can.
 */
export function matmulLaunch(
  device: GPUDevice,
  shape: MatmulShape,
  b: { a: Binding; b: Binding; c: Binding },
  opts: MatmulLaunchOptions = {},
): Launch {
  const s = checkedShape(shape, b);
  return buildLaunches(device, s, forcedPlan(device, s, { variant: opts.variant, splits: 1 }, 0), b)[0];
}

/**
 * Launches (encode them in order, in one pass or several) computing C (+)= op(A)·op(B), like
 * matmulLaunch, but free to split K across workgroups when that is cheaper (long K, small C: the
 * weight gradients Aᵀ·B of a training step). A split writes its partial products into `scratch` and
 * a second launch adds them, in a fixed order, into C (deterministic; accumulate adds C too). Without
 * `scratch`, or with one too small for any split, this is [matmulLaunch(...)]. matmulScratchBytes
 * says how much the chosen split wants; the scratch is only used between the two launches, so one
 * buffer can serve every product encoded in sequence.
 */
export function matmulLaunches(
  device: GPUDevice,
  shape: MatmulShape,
  b: { a: Binding; b: Binding; c: Binding; scratch?: Binding },
  opts: MatmulLaunchesOptions = {},
): Launch[] {
  const s = checkedShape(shape, b);
  const scratchBytes = b.scratch ? bindingBytes(b.scratch) : 0;
  return buildLaunches(device, s, forcedPlan(device, s, opts, scratchBytes), b);
}
