// Softmax cross-entropy over logits [rows, cols] with integer targets [rows].
//   xent_forward:  ROW_LANES invocations per row, 64 / ROW_LANES rows per workgroup: lse = max + log(sum exp(l − max)) (stable for any logits),
//                  losses[r] = lse − l[target], and lse kept for the backward.
//   xent_mean:     one workgroup: loss = mean of losses, summed by a fixed tree (deterministic).
//   xent_backward: dlogits[r, c] = (exp(l − lse) − [c == target]) / rows   (the gradient of the mean).

struct Dims {
  rows: u32,
  cols: u32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> losses: array<f32>;
@group(0) @binding(4) var<storage, read_write> lse_out: array<f32>;
@group(0) @binding(5) var<storage, read> lse_in: array<f32>;
@group(0) @binding(6) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(7) var<storage, read> losses_in: array<f32>;
@group(0) @binding(8) var<storage, read_write> loss: array<f32>;

const RW: u32 = 64u; // invocations per workgroup in the forward
// Invocations per row in the forward: a power of two ≤ 64 chosen by the host from the width (rowLanes in launch.ts).
override ROW_LANES: u32 = 64u;
const WG: u32 = 256u;

var<workgroup> red: array<f32, 256>;

fn target_of(row: u32) -> u32 {
  // The host validates targets; the clamp keeps a bad one inside the row.
  return u32(clamp(targets[row], 0, i32(dims.cols) - 1));
}

@compute @workgroup_size(RW)
fn xent_forward(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let lane = lid % ROW_LANES;
  let head = lid - lane; // this row's first slot in red
  let row = (wid.y * nwg.x + wid.x) * (RW / ROW_LANES) + lid / ROW_LANES;
  // Surplus rows of the last workgroup keep running (as -inf/zeros) so every barrier stays uniform.
  let live = row < dims.rows;
  let base = row * dims.cols;
  var m = -3.402823e38;
  if (live) {
    for (var c = lane; c < dims.cols; c += ROW_LANES) {
      m = max(m, logits[base + c]);
    }
  }
  red[lid] = m;
  workgroupBarrier();
  for (var s = ROW_LANES / 2u; s > 0u; s >>= 1u) {
    if (lane < s) {
      red[lid] = max(red[lid], red[lid + s]);
    }
    workgroupBarrier();
  }
  let mx = red[head];
  workgroupBarrier();
  var sum = 0.0;
  if (live) {
    for (var c = lane; c < dims.cols; c += ROW_LANES) {
      sum += exp(logits[base + c] - mx);
    }
  }
  red[lid] = sum;
  workgroupBarrier();
  for (var s = ROW_LANES / 2u; s > 0u; s >>= 1u) {
    if (lane < s) {
      red[lid] = red[lid] + red[lid + s];
    }
    workgroupBarrier();
  }
  if (live && lane == 0u) {
    let lse = mx + log(red[head]);
    lse_out[row] = lse;
    losses[row] = lse - logits[base + target_of(row)];
  }
}

@compute @workgroup_size(WG)
fn xent_mean(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var r = lid; r < dims.rows; r += WG) {
    s += losses_in[r];
  }
  red[lid] = s;
  workgroupBarrier();
  for (var h = WG / 2u; h > 0u; h >>= 1u) {
    if (lid < h) {
      red[lid] = red[lid] + red[lid + h];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    loss[0] = red[0] / f32(dims.rows);
  }
}

@compute @workgroup_size(WG)
fn xent_backward(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid;
  if (i >= dims.rows * dims.cols) {
    return;
  }
  let row = i / dims.cols;
  let c = i % dims.cols;
  var p = exp(logits[i] - lse_in[row]);
  if (c == target_of(row)) {
    p -= 1.0;
  }
  dlogits[i] = p / f32(dims.rows);
}
