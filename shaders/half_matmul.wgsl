// Matmul with f16 storage, f32 arithmetic:  C[M,N] (+)= op(A)[M,K] · op(B)[K,N],  C row-major f32.
//   HALF_A / HALF_B: that operand holds IEEE binary16 values packed two per u32 (shaders/half.wgsl:
//     element i in word i>>1, low half first); otherwise it holds f32. Either way it is bound as
//     array<u32> (an f32 is read with bitcast), so one source serves all four storage combinations.
//     Packed rows need not be word-aligned: an odd K or M makes rows straddle words, and every element
//     is addressed on its own as (word i>>1, half i&1).
//   TRANS_A: A is stored [K, M] (op(A) = Aᵀ);  TRANS_B: B is stored [N, K] (op(B) = Bᵀ).
//   ACCUMULATE: C += product instead of C = product.
// f16 → f32 by unpack2x16float (core WGSL, no 'shader-f16' needed; exact for every finite f16: each is
// an f32). Workgroup memory holds the unpacked f32 values and all products and sums are f32, so the
// result equals an f32 matmul of the f16-rounded operands.
// Tiling as the simple f32 matmul (shaders/matmul.wgsl): a 16×16 workgroup computes a 64×64 tile of C,
// each invocation 4×4 outputs strided by 16; K advances 16 at a time through workgroup memory;
// out-of-range loads read 0, so any M, N, K >= 1.

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override ACCUMULATE: bool = false;
override HALF_A: bool = false;
override HALF_B: bool = true;

struct Dims {
  M: u32,
  N: u32,
  K: u32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> A: array<u32>;
@group(0) @binding(2) var<storage, read> B: array<u32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;

var<workgroup> As: array<f32, 1024>; // [TK][TM]
var<workgroup> Bs: array<f32, 1024>; // [TK][TN]

// Element i of A (f16 from word i>>1, shifted so its half sits in the low 16 bits, or an f32).
fn elem_a(i: u32) -> f32 {
  if (HALF_A) {
    return unpack2x16float(A[i >> 1u] >> ((i & 1u) << 4u)).x;
  }
  return bitcast<f32>(A[i]);
}

fn elem_b(i: u32) -> f32 {
  if (HALF_B) {
    return unpack2x16float(B[i >> 1u] >> ((i & 1u) << 4u)).x;
  }
  return bitcast<f32>(B[i]);
}

fn load_a(row: u32, k: u32) -> f32 {
  if (row >= dims.M || k >= dims.K) {
    return 0.0;
  }
  if (TRANS_A) {
    return elem_a(k * dims.M + row);
  }
  return elem_a(row * dims.K + k);
}

fn load_b(k: u32, col: u32) -> f32 {
  if (k >= dims.K || col >= dims.N) {
    return 0.0;
  }
  if (TRANS_B) {
    return elem_b(col * dims.K + k);
  }
  return elem_b(k * dims.N + col);
}

@compute @workgroup_size(16, 16)
fn half_matmul(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row0 = wid.y * TM;
  let col0 = wid.x * TN;
  let tid = lid.y * 16u + lid.x;
  // Named vec4 accumulators (see matmul.wgsl: SwiftShader spills an indexed array to memory).
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  for (var k0 = 0u; k0 < dims.K; k0 += TK) {
    // 1024 elements per tile, 4 per invocation; the fastest-varying index follows memory order, so
    // neighbouring invocations read neighbouring halves (two per word).
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
      As[kk * TM + m] = load_a(row0 + m, k0 + kk);
      var n: u32;
      var kb: u32;
      if (TRANS_B) {
        kb = idx % TK;
        n = idx / TK;
      } else {
        n = idx % TN;
        kb = idx / TN;
      }
      Bs[kb * TN + n] = load_b(k0 + kb, col0 + n);
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
  store_row(row0 + lid.y, col0 + lid.x, acc0);
  store_row(row0 + lid.y + 16u, col0 + lid.x, acc1);
  store_row(row0 + lid.y + 32u, col0 + lid.x, acc2);
  store_row(row0 + lid.y + 48u, col0 + lid.x, acc3);
}

// Writes lanes j of `v` to C[r, c + 16·j] where inside C.
fn store_row(r: u32, c: u32, v: vec4f) {
  if (r >= dims.M) {
    return;
  }
  for (var j = 0u; j < 4u; j++) {
    let col = c + 16u * j;
    if (col < dims.N) {
      let o = r * dims.N + col;
      if (ACCUMULATE) {
        C[o] = C[o] + v[j];
      } else {
        C[o] = v[j];
      }
    }
  }
}
