// Residual connection of a transformer block, elementwise over n values.
//   residual_forward:    out[i] = a[i] + b[i]    (the skip connection; out must not alias a or b)
//   residual_accumulate: acc[i] += b[i]          (in place, for gradients: the residual backward
//                                                 adds the upstream gradient into both branches)
// One f32 addition per element, so either result equals the f32 rounding of the exact sum.

struct Dims {
  n: u32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> acc: array<f32>;

const WG: u32 = 256u;

@compute @workgroup_size(WG)
fn residual_forward(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid;
  if (i >= dims.n) {
    return;
  }
  out[i] = a[i] + b[i];
}

@compute @workgroup_size(WG)
fn residual_accumulate(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid;
  if (i >= dims.n) {
    return;
  }
  acc[i] = acc[i] + b[i];
}
