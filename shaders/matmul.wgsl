// Tiled matrix multiply  C[b] (+)= op(A[b])[M,K] · op(B[b])[K,N]  for b < batch, all row-major f32.
//   TRANS_A: A is stored [K, M] (so op(A) = Aᵀ);  TRANS_B: B is stored [N, K] (op(B) = Bᵀ).
//   ACCUMULATE: C += product instead of C = product.
//   Batch entry b starts at element b·strideA of A, b·strideB of B, b·strideC of C (workgroup_id.z = b;
//   a stride of 0 shares one matrix across the batch). A batch of 1 is the plain product.
// This is the "simple" variant (src/gpu/kernels/matmul.ts): scalar loads, any sizes; the selector
// prefers shaders/matmul_tuned.wgsl for large products.
// A 16×16 workgroup computes a 64×64 tile of C, each invocation a 4×4 block strided by 16 (so
// neighbouring invocations touch neighbouring columns: coalesced writes, conflict-free shared reads).
// K advances in steps of 16 through workgroup-shared tiles; out-of-range loads read as 0, so any
// M, N, K >= 1 works.

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override ACCUMULATE: bool = false;

struct Dims {
  M: u32,
  N: u32,
  K: u32,
  batch: u32,
  strideA: u32,
  strideB: u32,
  strideC: u32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;

var<workgroup> As: array<f32, 1024>; // [TK][TM]
var<workgroup> Bs: array<f32, 1024>; // [TK][TN]

fn load_a(base: u32, row: u32, k: u32) -> f32 {
  if (row >= dims.M || k >= dims.K) {
    return 0.0;
  }
  if (TRANS_A) {
    return A[base + k * dims.M + row];
  }
  return A[base + row * dims.K + k];
}

fn load_b(base: u32, k: u32, col: u32) -> f32 {
  if (k >= dims.K || col >= dims.N) {
    return 0.0;
  }
  if (TRANS_B) {
    return B[base + col * dims.K + k];
  }
  return B[base + k * dims.N + col];
}

@compute @workgroup_size(16, 16)
fn matmul(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row0 = wid.y * TM;
  let col0 = wid.x * TN;
  let tid = lid.y * 16u + lid.x;
  let baseA = wid.z * dims.strideA;
  let baseB = wid.z * dims.strideB;
  let baseC = wid.z * dims.strideC;
  // Four named vec4 accumulators (rows i = 0..3, columns j in the lanes) rather than an array: simple
  // JITs such as SwiftShader's keep these in registers but spill an indexed array to memory.
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  for (var k0 = 0u; k0 < dims.K; k0 += TK) {
    // 1024 elements per tile, 4 per invocation; the fastest-varying index follows memory order.
    for (var e = 0u; e < 4u; e++) {
      let idx = tid + e * 256u;
      var m: u32;
      var kk: u32;
      if (TRANS_A) {
        m = idx % TM;
        kk = idx / TM;
      } else {
        kk = idx % TK;
        m = idx / TK;
      }
      As[kk * TM + m] = load_a(baseA, row0 + m, k0 + kk);
      var n: u32;
      var kb: u32;
      if (TRANS_B) {
        kb = idx % TK;
        n = idx / TK;
      } else {
        n = idx % TN;
        kb = idx / TN;
      }
      Bs[kb * TN + n] = load_b(baseB, k0 + kb, col0 + n);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      let ar = kk * TM + lid.y;
      let br = kk * TN + lid.x;
      let b = vec4f(Bs[br], Bs[br + 16u], Bs[br + 32u], Bs[br + 48u]);
      acc0 += As[ar] * b;
      acc1 += As[ar + 16u] * b;
      acc2 += As[ar + 32u] * b;
      acc3 += As[ar + 48u] * b;
    }
    workgroupBarrier();
  }
  store_row(baseC, row0 + lid.y, col0 + lid.x, acc0);
  store_row(baseC, row0 + lid.y + 16u, col0 + lid.x, acc1);
  store_row(baseC, row0 + lid.y + 32u, col0 + lid.x, acc2);
  store_row(baseC, row0 + lid.y + 48u, col0 + lid.x, acc3);
}

// Writes lanes j of `v` to C[r, c + 16·j] where inside C (batch entry starting at `base`).
fn store_row(base: u32, r: u32, c: u32, v: vec4f) {
  if (r >= dims.M) {
    return;
  }
  for (var j = 0u; j < 4u; j++) {
    let col = c + 16u * j;
    if (col < dims.N) {
      let o = base + r * dims.N + col;
      if (ACCUMULATE) {
        C[o] = C[o] + v[j];
      } else {
        C[o] = v[j];
      }
    }
  }
}
