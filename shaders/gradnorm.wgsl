// Global gradient L2 norm and clipping, entirely on the GPU (the norm never visits the CPU).
//   gradnorm_partial: one launch per gradient tensor of n values, with `parts` workgroups (<= 256).
//                     Workgroup p's invocation l sums the squares of elements p·256 + l + k·parts·256
//                     (k = 0, 1, …, in order), then a fixed tree sums the 256 invocations; the
//                     result goes to partials[slot + p]. Tensors use disjoint slot ranges.
//   gradnorm_final:   one workgroup sums the `count` partials (strided, then a fixed tree) and writes
//                     norm[0] = sqrt(Σ g²). Fixed order throughout: deterministic.
//   grad_clip:        g[i] *= min(1, max_norm / (norm[0] + 1e-6)), reading the norm from the GPU buffer
//                     (PyTorch's clip_grad_norm_ formula).
// Squares are formed in f32: values above ~1.8e19 overflow to +inf (then the clip scale is 0) and
// values below ~1e-19 contribute nothing, both far outside what a healthy gradient holds.

struct Dims {
  n: u32,       // partial: elements in this tensor; final: number of partials; clip: elements
  slot: u32,    // partial: first partials slot of this tensor
  parts: u32,   // partial: workgroups of this launch
  max_norm: f32, // clip
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;
@group(0) @binding(3) var<storage, read> partials_in: array<f32>;
@group(0) @binding(4) var<storage, read_write> norm_out: array<f32>;
@group(0) @binding(5) var<storage, read> norm_in: array<f32>;
@group(0) @binding(6) var<storage, read_write> grad_rw: array<f32>;

const WG: u32 = 256u;

var<workgroup> red: array<f32, 256>;

fn reduce(lid: u32) {
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      red[lid] = red[lid] + red[lid + s];
    }
    workgroupBarrier();
  }
}

@compute @workgroup_size(WG)
fn gradnorm_partial(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let p = wid.x;
  let stride = dims.parts * WG;
  var s = 0.0;
  for (var i = p * WG + lid; i < dims.n; i += stride) {
    let g = grad[i];
    s += g * g;
  }
  red[lid] = s;
  reduce(lid);
  if (lid == 0u) {
    partials[dims.slot + p] = red[0];
  }
}

@compute @workgroup_size(WG)
fn gradnorm_final(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var i = lid; i < dims.n; i += WG) {
    s += partials_in[i];
  }
  red[lid] = s;
  reduce(lid);
  if (lid == 0u) {
    norm_out[0] = sqrt(red[0]);
  }
}

@compute @workgroup_size(WG)
fn grad_clip(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid;
  if (i >= dims.n) {
    return;
  }
  let scale = min(1.0, dims.max_norm / (norm_in[0] + 1e-6));
  grad_rw[i] = grad_rw[i] * scale;
}
