// Register-tiled matrix multiply with no workgroup memory:  C[b] (+)= op(A[b]) · op(B[b]), row-major f32.
//   TRANS_A: A is stored [K, M] (op(A) = Aᵀ);  TRANS_B: B is stored [N, K] (op(B) = Bᵀ).
//   ACCUMULATE: C += product instead of C = product.
// The "direct" variants of src/gpu/kernels/matmul.ts. A WX×WY workgroup computes an (8·WY)×(COLS·WX)
// tile of C (WX, WY, COLS are overrides, so one entry point gives the 32×32, 64×64, 128×128 and 64×16
// tiles); invocation (x, y) holds an 8×COLS block in registers (COLS = 8, or 4 for narrow outputs):
// rows r + WY·i and columns c + WX·j, strided so that neighbouring invocations touch neighbouring
// columns. Every k step reads 8 values of op(A) (one address across a row of invocations: a
// broadcast) and COLS of op(B) (consecutive addresses across the row) straight from the storage
// buffers, then does 8·COLS multiply-adds.
//
// Why no workgroup memory: on SwiftShader (a CPU Vulkan; each workgroup runs on one core) the
// kernels that stage tiles through workgroup memory with barriers (matmul.wgsl, matmul_tuned.wgsl)
// pay a fixed ~5 ms of CPU per 256-invocation workgroup, measured, which dominated the small and thin
// products of a GPT training step (1024×64×64: ~6× slower in `simple` than here); the CPU's caches
// do the operand reuse that workgroup memory does on a GPU. On a GPU the same loads are coalesced
// (op(B) across a row of invocations) or broadcast (op(A)) and mostly hit L1.
//
// Edges: rows and columns past M, N read the last valid row or column (never stored), and the
// k loop runs exactly over [kBegin, kEnd): no bounds checks or selects in the loop, any sizes.
//
// Split K: workgroup_id.z = b·splits + s. Entry s of a batch entry b covers k in
// [s·kChunk, min(K, (s+1)·kChunk)) and writes C at z·strideC: the host binds a scratch buffer of
// batch·splits packed M×N partial products as C (strideC = M·N) and then runs matmul_splitk_reduce,
// which adds the partials in a fixed order (deterministic: no atomics). With splits = 1 this is the
// plain (batched) product written straight into C.

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override ACCUMULATE: bool = false;
override WX: u32 = 8u;
override WY: u32 = 8u;
// Columns per invocation: 8, or 4 for a tile of 4·WX columns (narrow outputs: a rank-16 factor).
override COLS: u32 = 8u;

struct Dims {
  M: u32,
  N: u32,
  K: u32,
  batch: u32,
  strideA: u32,
  strideB: u32,
  strideC: u32,
  splits: u32,
  kChunk: u32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;

// Index of op(A)[row, k0] for a row clamped into range; the index of op(A)[row, k] is this + (k−k0)·aStep.
fn a_origin(base: u32, row: u32, k0: u32) -> u32 {
  let m = min(row, dims.M - 1u);
  if (TRANS_A) {
    return base + k0 * dims.M + m;
  }
  return base + m * dims.K + k0;
}

// Index of op(B)[k0, col] for a column clamped into range; op(B)[k, col] is this + (k−k0)·bStep.
fn b_origin(base: u32, col: u32, k0: u32) -> u32 {
  let n = min(col, dims.N - 1u);
  if (TRANS_B) {
    return base + n * dims.K + k0;
  }
  return base + k0 * dims.N + n;
}

fn store(base: u32, r: u32, c: u32, v: f32) {
  if (r < dims.M && c < dims.N) {
    let o = base + r * dims.N + c;
    if (ACCUMULATE) {
      C[o] = C[o] + v;
    } else {
      C[o] = v;
    }
  }
}

// Stores lanes of the two accumulators of row r: columns c + WX·j, j < COLS.
fn store_row(base: u32, r: u32, c: u32, lo: vec4f, hi: vec4f) {
  if (r >= dims.M) {
    return;
  }
  store(base, r, c, lo.x);
  store(base, r, c + WX, lo.y);
  store(base, r, c + 2u * WX, lo.z);
  store(base, r, c + 3u * WX, lo.w);
  if (COLS == 4u) {
    return;
  }
  store(base, r, c + 4u * WX, hi.x);
  store(base, r, c + 5u * WX, hi.y);
  store(base, r, c + 6u * WX, hi.z);
  store(base, r, c + 7u * WX, hi.w);
}

@compute @workgroup_size(WX, WY)
fn matmul_direct(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let entry = wid.z / dims.splits;
  let kBegin = (wid.z % dims.splits) * dims.kChunk;
  let kEnd = min(dims.K, kBegin + dims.kChunk);
  let baseA = entry * dims.strideA;
  let baseB = entry * dims.strideB;
  let r = wid.y * (8u * WY) + lid.y;
  let c = wid.x * (COLS * WX) + lid.x;
  let aStep = select(1u, dims.M, TRANS_A);
  let bStep = select(dims.N, 1u, TRANS_B);
  let ra0 = a_origin(baseA, r, kBegin);
  let ra1 = a_origin(baseA, r + WY, kBegin);
  let ra2 = a_origin(baseA, r + 2u * WY, kBegin);
  let ra3 = a_origin(baseA, r + 3u * WY, kBegin);
  let ra4 = a_origin(baseA, r + 4u * WY, kBegin);
  let ra5 = a_origin(baseA, r + 5u * WY, kBegin);
  let ra6 = a_origin(baseA, r + 6u * WY, kBegin);
  let ra7 = a_origin(baseA, r + 7u * WY, kBegin);
  let cb0 = b_origin(baseB, c, kBegin);
  let cb1 = b_origin(baseB, c + WX, kBegin);
  let cb2 = b_origin(baseB, c + 2u * WX, kBegin);
  let cb3 = b_origin(baseB, c + 3u * WX, kBegin);
  let cb4 = b_origin(baseB, c + 4u * WX, kBegin);
  let cb5 = b_origin(baseB, c + 5u * WX, kBegin);
  let cb6 = b_origin(baseB, c + 6u * WX, kBegin);
  let cb7 = b_origin(baseB, c + 7u * WX, kBegin);
  // Named accumulators (row i: acc<i>0 = columns 0..3, acc<i>1 = columns 4..7), not an array: simple
  // JITs such as SwiftShader's keep an indexed array in memory.
  var acc00 = vec4f(0.0); var acc01 = vec4f(0.0);
  var acc10 = vec4f(0.0); var acc11 = vec4f(0.0);
  var acc20 = vec4f(0.0); var acc21 = vec4f(0.0);
  var acc30 = vec4f(0.0); var acc31 = vec4f(0.0);
  var acc40 = vec4f(0.0); var acc41 = vec4f(0.0);
  var acc50 = vec4f(0.0); var acc51 = vec4f(0.0);
  var acc60 = vec4f(0.0); var acc61 = vec4f(0.0);
  var acc70 = vec4f(0.0); var acc71 = vec4f(0.0);
  var oa = 0u;
  var ob = 0u;
  for (var k = kBegin; k < kEnd; k++) {
    let a0 = vec4f(A[ra0 + oa]);
    let a1 = vec4f(A[ra1 + oa]);
    let a2 = vec4f(A[ra2 + oa]);
    let a3 = vec4f(A[ra3 + oa]);
    let a4 = vec4f(A[ra4 + oa]);
    let a5 = vec4f(A[ra5 + oa]);
    let a6 = vec4f(A[ra6 + oa]);
    let a7 = vec4f(A[ra7 + oa]);
    let b0 = vec4f(B[cb0 + ob], B[cb1 + ob], B[cb2 + ob], B[cb3 + ob]);
    acc00 = fma(a0, b0, acc00);
    acc10 = fma(a1, b0, acc10);
    acc20 = fma(a2, b0, acc20);
    acc30 = fma(a3, b0, acc30);
    acc40 = fma(a4, b0, acc40);
    acc50 = fma(a5, b0, acc50);
    acc60 = fma(a6, b0, acc60);
    acc70 = fma(a7, b0, acc70);
    if (COLS == 8u) {
      let b1 = vec4f(B[cb4 + ob], B[cb5 + ob], B[cb6 + ob], B[cb7 + ob]);
      acc01 = fma(a0, b1, acc01);
      acc11 = fma(a1, b1, acc11);
      acc21 = fma(a2, b1, acc21);
      acc31 = fma(a3, b1, acc31);
      acc41 = fma(a4, b1, acc41);
      acc51 = fma(a5, b1, acc51);
      acc61 = fma(a6, b1, acc61);
      acc71 = fma(a7, b1, acc71);
    }
    oa += aStep;
    ob += bStep;
  }
  let baseC = wid.z * dims.strideC;
  store_row(baseC, r, c, acc00, acc01);
  store_row(baseC, r + WY, c, acc10, acc11);
  store_row(baseC, r + 2u * WY, c, acc20, acc21);
  store_row(baseC, r + 3u * WY, c, acc30, acc31);
  store_row(baseC, r + 4u * WY, c, acc40, acc41);
  store_row(baseC, r + 5u * WY, c, acc50, acc51);
  store_row(baseC, r + 6u * WY, c, acc60, acc61);
  store_row(baseC, r + 7u * WY, c, acc70, acc71);
}

// Split-K second pass: C[b·strideC + i] (+)= Σ_{s < splits} P[(b·splits + s)·M·N + i], s in order.
// P (the partials written by matmul_direct) is bound at binding 1. One invocation per element of C;
// workgroup_id.y = b.
@compute @workgroup_size(64)
fn matmul_splitk_reduce(@builtin(global_invocation_id) gid: vec3u) {
  let mn = dims.M * dims.N;
  let i = gid.x;
  if (i >= mn) {
    return;
  }
  let b = gid.y;
  var p = b * dims.splits * mn + i;
  var acc = A[p];
  for (var s = 1u; s < dims.splits; s++) {
    p += mn;
    acc += A[p];
  }
  let o = b * dims.strideC + i;
  if (ACCUMULATE) {
    C[o] = C[o] + acc;
  } else {
    C[o] = acc;
  }
}
