// Blockwise int8 quantization, the GPU twin of src/compress/int8/int8.ts (same bytes, same rules):
//   blocks of 256 elements; scale = maxabs · f32(1/127) (a correctly rounded multiply, so CPU and GPU
//   get the same scale bits); q = round_half_away_from_zero(x / scale) clamped to ±127;
//   blocks with maxabs < 2^-100 are sent as scale 0, q 0 (avoids subnormal scales, which GPUs may flush).
// Output words: [0, blocks) scale bits, then ceil(n/4) words of 4 int8 values each, element 4w+j in
// byte j (little-endian), zero padded. WGSL has no 8-bit storage, hence the packing.
// One workgroup of 64 invocations per block; each invocation owns one packed word (4 elements).
// A block holding NaN/Inf gets a NaN scale, which the host turns into an error.

struct Dims {
  n: u32,
  blocks: u32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> q_out: array<u32>;
// Error-feedback variant: quantizes d = (base − local) + residual and keeps residual ← d − decode.
@group(0) @binding(3) var<storage, read> base_w: array<f32>;
@group(0) @binding(4) var<storage, read> local_w: array<f32>;
@group(0) @binding(5) var<storage, read_write> residual: array<f32>;
// Dequantize.
@group(0) @binding(6) var<storage, read> q_in: array<u32>;
@group(0) @binding(7) var<storage, read_write> y: array<f32>;

const BLOCK: u32 = 256u;
const WG: u32 = 64u;
const INV127: u32 = 0x3c010204u; // bits of f32(1/127)
const TINY: u32 = 0x0d800000u; // bits of 2^-100
const F32_INF: u32 = 0x7f800000u;
const F32_NAN: u32 = 0x7fc00000u;

var<workgroup> red: array<f32, 64>;
var<workgroup> red_bad: array<u32, 64>;

fn is_finite(v: f32) -> bool {
  return (bitcast<u32>(v) & F32_INF) != F32_INF;
}

struct BlockScale {
  scale: f32,
  bad: bool, // the block holds NaN or Inf
}

// Block scale from each invocation's 4 values, reduced over the workgroup. Non-finite values are
// counted separately: they never enter max(), whose NaN handling is implementation-defined.
fn block_scale(vals: vec4f, lid: u32) -> BlockScale {
  var local_max = 0.0;
  var bad = 0u;
  for (var j = 0u; j < 4u; j++) {
    if (is_finite(vals[j])) {
      local_max = max(local_max, abs(vals[j]));
    } else {
      bad = 1u;
    }
  }
  red[lid] = local_max;
  red_bad[lid] = bad;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      red[lid] = max(red[lid], red[lid + s]);
      red_bad[lid] = max(red_bad[lid], red_bad[lid + s]);
    }
    workgroupBarrier();
  }
  let maxabs = red[0];
  let any_bad = red_bad[0] != 0u;
  if (any_bad || maxabs < bitcast<f32>(TINY)) {
    return BlockScale(0.0, any_bad);
  }
  return BlockScale(maxabs * bitcast<f32>(INV127), false);
}

fn quantize_one(v: f32, scale: f32) -> i32 {
  if (scale == 0.0) {
    return 0;
  }
  let t = v / scale;
  let a = abs(t);
  var r = floor(a);
  if (a - r >= 0.5) { // exact in f32: half away from zero
    r += 1.0;
  }
  return i32(sign(t) * min(r, 127.0));
}

// Quantizes this invocation's 4 values and writes the block's scale (NaN bits if bad) and this word.
fn write_block(block: u32, lid: u32, vals: vec4f, bs: BlockScale) -> vec4f {
  if (lid == 0u) {
    q_out[block] = select(bitcast<u32>(bs.scale), F32_NAN, bs.bad);
  }
  let w = block * WG + lid;
  var word = 0u;
  var deq = vec4f(0.0);
  for (var j = 0u; j < 4u; j++) {
    let q = quantize_one(vals[j], bs.scale);
    word |= (u32(q) & 0xffu) << (8u * j);
    deq[j] = f32(q) * bs.scale;
  }
  if (w < (dims.n + 3u) / 4u) {
    q_out[dims.blocks + w] = word;
  }
  return deq;
}

@compute @workgroup_size(WG)
fn quantize_int8(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let block = wid.y * nwg.x + wid.x;
  if (block >= dims.blocks) {
    return;
  }
  var vals = vec4f(0.0);
  for (var j = 0u; j < 4u; j++) {
    let i = block * BLOCK + lid * 4u + j;
    if (i < dims.n) {
      vals[j] = x[i];
    }
  }
  _ = write_block(block, lid, vals, block_scale(vals, lid));
}

@compute @workgroup_size(WG)
fn quantize_int8_ef(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let block = wid.y * nwg.x + wid.x;
  if (block >= dims.blocks) {
    return;
  }
  var vals = vec4f(0.0);
  for (var j = 0u; j < 4u; j++) {
    let i = block * BLOCK + lid * 4u + j;
    if (i < dims.n) {
      vals[j] = (base_w[i] - local_w[i]) + residual[i];
    }
  }
  let bs = block_scale(vals, lid);
  let deq = write_block(block, lid, vals, bs);
  for (var j = 0u; j < 4u; j++) {
    let i = block * BLOCK + lid * 4u + j;
    if (i < dims.n) {
      // A non-finite block is reported as an error by the host; keep the residual finite meanwhile.
      residual[i] = select(vals[j] - deq[j], 0.0, bs.bad);
    }
  }
}

@compute @workgroup_size(WG)
fn dequantize_int8(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let w = (wid.y * nwg.x + wid.x) * WG + lid;
  if (w >= (dims.n + 3u) / 4u) {
    return;
  }
  let word = q_in[dims.blocks + w];
  let scale = bitcast<f32>(q_in[(w * 4u) / BLOCK]);
  for (var j = 0u; j < 4u; j++) {
    let i = w * 4u + j;
    if (i < dims.n) {
      let q = i32(word << (24u - 8u * j)) >> 24u; // sign-extend byte j
      y[i] = f32(q) * scale;
    }
  }
}
