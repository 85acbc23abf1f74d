// f16 storage: casts between f32 arrays and IEEE binary16 values packed two per u32 (src/gpu/kernels/half.ts).
//   f32_to_half: dst[w] = f16(src[2w]) | f16(src[2w+1]) << 16   (n elements → ceil(n/2) words; for odd n
//                the high half of the last word is 0)
//   half_to_f32: dst[i] = f32(half i&1 of src[i>>1])            for i < n
// Element i of a packed array lives in word i>>1, bits 16·(i&1)…16·(i&1)+15: the little-endian byte
// order of a Uint16Array of the halves, and the lane order of pack2x16float / unpack2x16float.
//
// Both casts work on bits (the f32 input is bound as array<u32> and never touched as a float), so the
// result is the same on every GPU and needs no 'shader-f16' feature:
//   - f32 → f16 rounds to nearest, ties to even. (WGSL's own conversion, pack2x16float included, may
//     round to either neighbour and is indeterminate out of range, so it is not used here.)
//     Finite |x| that would round past 65504 and ±Inf saturate to ±65504 (clamp to ±65504, then round);
//     NaN becomes the quiet NaN 0x7e00 with its sign (payload dropped). f32 subnormals become ±0;
//     f16 subnormals (|x| < 2^-14) are produced exactly (no flush).
//   - f16 → f32 is exact for every pattern (subnormals normalised, ±Inf kept, NaN → quiet NaN with
//     the payload shifted in, as IEEE widening does).
// One invocation per u32 word; 1-D work folded into a 2-D grid past the per-dimension limit.

struct Dims {
  n: u32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

const WG: u32 = 256u;

// Bits of an f32 → bits of the f16 (low 16 bits), round to nearest even, saturating at ±65504.
fn f32_bits_to_half(b: u32) -> u32 {
  let sign = (b >> 16u) & 0x8000u;
  let a = b & 0x7fffffffu;
  if (a > 0x7f800000u) {
    return sign | 0x7e00u; // NaN
  }
  if (a >= 0x477ff000u) {
    return sign | 0x7bffu; // |x| >= 65520 (rounds to Inf in IEEE) or Inf: saturate to 65504
  }
  let e = a >> 23u;
  if (e >= 113u) {
    // Normal f16 (|x| >= 2^-14): rebias the exponent by 127 - 15 = 112, then round the 13 dropped
    // mantissa bits to nearest even. A carry out of the mantissa correctly bumps the exponent.
    let m = a - 0x38000000u;
    return sign | ((m + 0x0fffu + ((m >> 13u) & 1u)) >> 13u);
  }
  if (e < 102u) {
    return sign; // |x| < 2^-25: rounds to ±0 (2^-25 itself is a tie, also to 0, the even neighbour)
  }
  // f16 subnormal: value = mant · 2^(e-150) = (mant >> (126-e)) units of 2^-24, rounded to even.
  let mant = (a & 0x7fffffu) | 0x800000u;
  let shift = 126u - e; // 14 … 24
  let q = mant >> shift;
  let rem = mant & ((1u << shift) - 1u);
  let half = 1u << (shift - 1u);
  let up = rem > half || (rem == half && (q & 1u) == 1u);
  return sign | (q + select(0u, 1u, up)); // 1023 + 1 = 0x400 is the smallest normal: correct
}

// Bits of an f16 (low 16 bits of h) → bits of the f32 with the same value.
fn half_bits_to_f32(h: u32) -> u32 {
  let sign = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 31u) {
    return sign | 0x7f800000u | (m << 13u) | select(0u, 0x400000u, m != 0u); // Inf, or quiet NaN
  }
  if (e != 0u) {
    return sign | ((e + 112u) << 23u) | (m << 13u);
  }
  if (m == 0u) {
    return sign; // ±0
  }
  // Subnormal m · 2^-24 with leading bit p (0…9): f32 exponent p - 24, i.e. biased 103 + p.
  let p = firstLeadingBit(m);
  return sign | ((103u + p) << 23u) | ((m << (23u - p)) & 0x7fffffu);
}

@compute @workgroup_size(WG)
fn f32_to_half(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let w = (wid.y * nwg.x + wid.x) * WG + lid;
  let i = 2u * w;
  if (i >= dims.n) {
    return;
  }
  var hi = 0u;
  if (i + 1u < dims.n) {
    hi = f32_bits_to_half(src[i + 1u]);
  }
  dst[w] = f32_bits_to_half(src[i]) | (hi << 16u);
}

@compute @workgroup_size(WG)
fn half_to_f32(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let w = (wid.y * nwg.x + wid.x) * WG + lid;
  let i = 2u * w;
  if (i >= dims.n) {
    return;
  }
  let word = src[w];
  dst[i] = half_bits_to_f32(word & 0xffffu);
  if (i + 1u < dims.n) {
    dst[i + 1u] = half_bits_to_f32(word >> 16u);
  }
}
