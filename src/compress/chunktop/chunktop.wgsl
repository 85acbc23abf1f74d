// Chunked top-1 on the GPU, the twin of src/compress/chunktop/chunktop.ts: for every chunk of `chunk` contiguous
// values (the last may be shorter) the element with the largest |x|, ties to the lower index. One
// invocation per chunk walks it in index order, comparing the bits of |x| (f32 bits with the sign
// cleared, which order like |x| for finite values), so subnormals and -0 compare exactly as on the CPU
// and no float arithmetic is done. No workgroup memory, no barriers.
//
// Output `kept`: words [0, m) the kept indices (ascending, one per chunk), words [m, 2m) their values'
// f32 bits: the layout of topk.wgsl's kept list, so topk_scatter and the host's packing apply.
// chunktop_select_ef also writes residual ← d − decode(payload) for f32 kept values: +0 where kept,
// d where dropped, unless ef_prepare flagged a non-finite d (flags word 1), when it is left as it was.

struct Dims {
  n: u32,     // elements
  chunk: u32, // chunk length C >= 2
  m: u32,     // chunks: ceil(n / C)
  pad: u32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> kept: array<u32>;
@group(0) @binding(3) var<storage, read_write> residual: array<u32>;
// ef_prepare's flags (topk.wgsl): [1] the first i whose d is NaN or ±Inf, 0xffffffff for none.
@group(0) @binding(4) var<storage, read> ef_flags: array<u32>;

const WG: u32 = 64u;
const ABS: u32 = 0x7fffffffu;
const NONE: u32 = 0xffffffffu;

fn linear_group(wid: vec3u, nwg: vec3u) -> u32 {
  return wid.y * nwg.x + wid.x;
}

// The kept element of chunk j, written to kept[j] and kept[m + j]; returns its index.
fn select_chunk(j: u32) -> u32 {
  let lo = j * dims.chunk;
  let hi = min(dims.n, lo + dims.chunk);
  var best = lo;
  var a = x[lo] & ABS;
  for (var i = lo + 1u; i < hi; i++) {
    let v = x[i] & ABS;
    if (v > a) {
      best = i;
      a = v;
    }
  }
  kept[j] = best;
  kept[dims.m + j] = x[best];
  return best;
}

@compute @workgroup_size(WG)
fn chunktop_select(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let j = linear_group(wid, nwg) * WG + lid;
  if (j >= dims.m) {
    return;
  }
  _ = select_chunk(j);
}

@compute @workgroup_size(WG)
fn chunktop_select_ef(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let j = linear_group(wid, nwg) * WG + lid;
  if (j >= dims.m) {
    return;
  }
  let best = select_chunk(j);
  if (ef_flags[1] != NONE) {
    return;
  }
  let lo = j * dims.chunk;
  let hi = min(dims.n, lo + dims.chunk);
  for (var i = lo; i < hi; i++) {
    residual[i] = select(x[i], 0u, i == best);
  }
}
