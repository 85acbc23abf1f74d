// LayerNorm over the last dimension of x [rows, cols] (GPT's ln_1, ln_2, ln_f), with affine weight
// and bias [cols].
//   layernorm_forward:         ROW_LANES invocations per row, 64 / ROW_LANES rows per 64-wide
//                              workgroup (narrow rows get few lanes, so small widths do not pay
//                              for a 64-lane tree and barriers per row). mean = Σx/C, then var = Σ(x − mean)²/C
//                              (two passes: no cancellation for rows with a large offset),
//                              rstd = inverseSqrt(var + eps), out = (x − mean)·rstd·w + b; mean and rstd
//                              are saved per row for the backward.
//   layernorm_backward_dx:     rows laid out as in the forward. xhat = (x − mean)·rstd, g = dout·w,
//                              dx (+)= rstd·(g − mean(g) − xhat·mean(g·xhat)).
//   layernorm_backward_params: dweight[c] (+)= Σ_r dout[r,c]·xhat[r,c], dbias[c] (+)= Σ_r dout[r,c].
//                              A 256-wide workgroup covers 32 columns with 8 row lanes; lane l sums
//                              rows l, l+8, … in order, then lane 0 adds the 8 lane sums in order:
//                              deterministic, no float atomics.
// ACCUMULATE (per pipeline) adds into the existing gradient instead of overwriting it: dx accumulates
// into the residual stream's gradient, as in llm.c.

struct Dims {
  rows: u32,
  cols: u32,
  eps: f32,
}

override ACCUMULATE: bool = false;

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> mean_out: array<f32>;
@group(0) @binding(6) var<storage, read_write> rstd_out: array<f32>;
@group(0) @binding(7) var<storage, read> dout: array<f32>;
@group(0) @binding(8) var<storage, read> mean_in: array<f32>;
@group(0) @binding(9) var<storage, read> rstd_in: array<f32>;
@group(0) @binding(10) var<storage, read_write> dx: array<f32>;
@group(0) @binding(11) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(12) var<storage, read_write> dbias: array<f32>;

// Invocations per row: a power of two ≤ 64, chosen by the host from the width (rowLanes in launch.ts).
override ROW_LANES: u32 = 64u;
const RW: u32 = 64u; // invocations per workgroup of the row kernels
const PW: u32 = 256u; // invocations per workgroup in the params kernel
const PC: u32 = 32u; // columns per params workgroup
const PL: u32 = PW / PC; // row lanes per params workgroup

var<workgroup> red_a: array<f32, 256>;
var<workgroup> red_b: array<f32, 256>;

// Sums each row's ROW_LANES slots of red_a (and red_b) into its first slot by a fixed tree; call
// from uniform control flow.
fn reduce_row(lid: u32) {
  workgroupBarrier();
  let lane = lid % ROW_LANES;
  for (var s = ROW_LANES / 2u; s > 0u; s >>= 1u) {
    if (lane < s) {
      red_a[lid] = red_a[lid] + red_a[lid + s];
      red_b[lid] = red_b[lid] + red_b[lid + s];
    }
    workgroupBarrier();
  }
}

@compute @workgroup_size(RW)
fn layernorm_forward(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let lane = lid % ROW_LANES;
  let head = lid - lane; // this row's first slot in red_a
  let row = (wid.y * nwg.x + wid.x) * (RW / ROW_LANES) + lid / ROW_LANES;
  // Surplus rows of the last workgroup keep running (as zeros) so every barrier stays uniform.
  let live = row < dims.rows;
  let C = dims.cols;
  let base = row * C;
  var s = 0.0;
  if (live) {
    for (var c = lane; c < C; c += ROW_LANES) {
      s += x[base + c];
    }
  }
  red_a[lid] = s;
  red_b[lid] = 0.0;
  reduce_row(lid);
  let mean = red_a[head] / f32(C);
  workgroupBarrier(); // everyone has read red_a[head] before it is overwritten
  var v = 0.0;
  if (live) {
    for (var c = lane; c < C; c += ROW_LANES) {
      let d = x[base + c] - mean;
      v += d * d;
    }
  }
  red_a[lid] = v;
  reduce_row(lid);
  let rstd = inverseSqrt(red_a[head] / f32(C) + dims.eps);
  if (!live) {
    return; // after the last barrier
  }
  for (var c = lane; c < C; c += ROW_LANES) {
    out[base + c] = (x[base + c] - mean) * rstd * weight[c] + bias[c];
  }
  if (lane == 0u) {
    mean_out[row] = mean;
    rstd_out[row] = rstd;
  }
}

@compute @workgroup_size(RW)
fn layernorm_backward_dx(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let lane = lid % ROW_LANES;
  let head = lid - lane;
  let row = (wid.y * nwg.x + wid.x) * (RW / ROW_LANES) + lid / ROW_LANES;
  let live = row < dims.rows;
  let C = dims.cols;
  let base = row * C;
  var sg = 0.0;
  var sgx = 0.0;
  var mean = 0.0;
  var rstd = 0.0;
  if (live) {
    mean = mean_in[row];
    rstd = rstd_in[row];
    for (var c = lane; c < C; c += ROW_LANES) {
      let xhat = (x[base + c] - mean) * rstd;
      let g = dout[base + c] * weight[c];
      sg += g;
      sgx += g * xhat;
    }
  }
  red_a[lid] = sg;
  red_b[lid] = sgx;
  reduce_row(lid);
  if (!live) {
    return;
  }
  let mean_g = red_a[head] / f32(C);
  let mean_gx = red_b[head] / f32(C);
  for (var c = lane; c < C; c += ROW_LANES) {
    let xhat = (x[base + c] - mean) * rstd;
    let g = dout[base + c] * weight[c];
    let d = (g - mean_g - xhat * mean_gx) * rstd;
    if (ACCUMULATE) {
      dx[base + c] = dx[base + c] + d;
    } else {
      dx[base + c] = d;
    }
  }
}

@compute @workgroup_size(PW)
fn layernorm_backward_params(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let blk = wid.y * nwg.x + wid.x;
  if (blk * PC >= dims.cols) {
    return;
  }
  let C = dims.cols;
  let col = lid % PC;
  let lane = lid / PC;
  let c = blk * PC + col;
  var sw = 0.0;
  var sb = 0.0;
  if (c < C) {
    for (var r = lane; r < dims.rows; r += PL) {
      let d = dout[r * C + c];
      let xhat = (x[r * C + c] - mean_in[r]) * rstd_in[r];
      sw += d * xhat;
      sb += d;
    }
  }
  red_a[lid] = sw;
  red_b[lid] = sb;
  workgroupBarrier();
  if (lane == 0u && c < C) {
    var tw = 0.0;
    var tb = 0.0;
    for (var l = 0u; l < PL; l++) {
      tw += red_a[l * PC + col];
      tb += red_b[l * PC + col];
    }
    if (ACCUMULATE) {
      dweight[c] = dweight[c] + tw;
      dbias[c] = dbias[c] + tb;
    } else {
      dweight[c] = tw;
      dbias[c] = tb;
    }
  }
}
