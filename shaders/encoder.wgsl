// GPT input encoder: token embedding plus learned position embedding.
//   encoder_forward:      out[b, t, c] = wte[tokens[b, t], c] + wpe[t, c]
//                         tokens [B, T] i32, wte [V, C], wpe [>= T, C], out [B, T, C].
//   encoder_backward_wte: dwte[v, c] (+)= sum over positions q = b*T + t with tokens[q] == v of dout[q, c]
//   encoder_backward_wpe: dwpe[t, c] (+)= sum over b of dout[b, t, c]
// WGSL has no float atomics, so both backward kernels gather instead of scatter, and add in a fixed
// order (positions, or batch rows, ascending): deterministic. The wte gradient runs one workgroup per
// (vocab row v, block of 256 columns); the workgroup scans the tokens 256 positions at a time, marks
// the positions holding v in a 256-bit mask (atomicOr: the result does not depend on order), and each
// invocation then walks the set bits in ascending order adding dout for its column. Each token is
// compared once per (v, column block), not once per (v, c) as a per-element loop would do.
// ACCUMULATE adds the sum into the existing gradient (after summing: dwte = old + sum), for a wte
// shared with the output projection (weight tying).

struct Dims {
  batch: u32,
  seq: u32,
  channels: u32,
  vocab: u32,
}

override ACCUMULATE: bool = false;

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> tokens: array<i32>;
@group(0) @binding(2) var<storage, read> wte: array<f32>;
@group(0) @binding(3) var<storage, read> wpe: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read> dout: array<f32>;
@group(0) @binding(6) var<storage, read_write> dwte: array<f32>;
@group(0) @binding(7) var<storage, read_write> dwpe: array<f32>;

const WG: u32 = 256u;

var<workgroup> hits: array<atomic<u32>, 8>; // WG bits: position q0 + 32*w + j holds v iff bit j of word w

@compute @workgroup_size(WG)
fn encoder_forward(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid;
  if (i >= dims.batch * dims.seq * dims.channels) {
    return;
  }
  let q = i / dims.channels; // position b*T + t
  let c = i % dims.channels;
  let t = q % dims.seq;
  // The host validates tokens; the clamp only guarantees a bad one can never read outside the table.
  let tok = u32(clamp(tokens[q], 0, i32(dims.vocab) - 1));
  out[i] = wte[tok * dims.channels + c] + wpe[t * dims.channels + c];
}

@compute @workgroup_size(WG)
fn encoder_backward_wte(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let blocks = (dims.channels + WG - 1u) / WG;
  let g = wid.y * nwg.x + wid.x; // uniform across the workgroup, so the early return is too
  if (g >= dims.vocab * blocks) {
    return;
  }
  let v = i32(g / blocks);
  let c = (g % blocks) * WG + lid;
  let positions = dims.batch * dims.seq;
  var sum = 0.0;
  for (var q0 = 0u; q0 < positions; q0 += WG) {
    if (lid < 8u) {
      atomicStore(&hits[lid], 0u);
    }
    workgroupBarrier();
    let q = q0 + lid;
    if (q < positions && tokens[q] == v) {
      atomicOr(&hits[lid / 32u], 1u << (lid % 32u));
    }
    workgroupBarrier();
    if (c < dims.channels) {
      for (var w = 0u; w < 8u; w++) {
        var bits = atomicLoad(&hits[w]);
        while (bits != 0u) {
          let j = countTrailingZeros(bits);
          bits &= bits - 1u;
          sum += dout[(q0 + 32u * w + j) * dims.channels + c];
        }
      }
    }
    workgroupBarrier(); // everyone has read the mask before the next chunk clears it
  }
  if (c < dims.channels) {
    let i = u32(v) * dims.channels + c;
    if (ACCUMULATE) {
      dwte[i] = dwte[i] + sum;
    } else {
      dwte[i] = sum;
    }
  }
}

@compute @workgroup_size(WG)
fn encoder_backward_wpe(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid; // t*C + c
  let tc = dims.seq * dims.channels;
  if (i >= tc) {
    return;
  }
  var sum = 0.0;
  for (var b = 0u; b < dims.batch; b++) {
    sum += dout[b * tc + i];
  }
  if (ACCUMULATE) {
    dwpe[i] = dwpe[i] + sum;
  } else {
    dwpe[i] = sum;
  }
}
