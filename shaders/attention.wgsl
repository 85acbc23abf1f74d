// Causal multi-head self-attention (GPT-2 / nanoGPT / llm.c layout), FlashAttention-style: no T×T
// matrix is ever stored; the forward keeps one float per (b, h, query row) (the log-sum-exp of its
// scaled scores) and the backward recomputes the probabilities from it.
//
// Layouts (row-major f32): qkv [B, T, 3C] is the c_attn output, q = qkv[b, t, 0:C], k = [C:2C],
// v = [2C:3C]; head h owns columns h·hs .. h·hs + hs − 1 of each (hs = C / NH). out [B, T, C] (head h
// at the same columns, i.e. heads already merged back), lse and delta [B, NH, T], dqkv like qkv.
//   score[t, s] = (q_t · k_s) · scale, scale = 1/sqrt(hs); s <= t only (causal mask)
//   lse[t] = log Σ_s exp(score[t, s]),  P[t, s] = exp(score[t, s] − lse[t]),  out_t = Σ_s P[t, s]·v_s
//
// attention_forward:        one 64-invocation workgroup per (b, h, block of 64 query rows), one query
//                           row per invocation. Keys and values stream through workgroup memory in
//                           tiles of tk = min(32, 1536/hs) rows; each invocation keeps a running max m,
//                           sum l and output accumulator (online softmax), rescaled once per tile.
// attention_backward_delta: delta[t] = dout_t · out_t (one invocation per (b, h, t)).
// attention_backward_dq:    like the forward: per query row t, over key tiles s <= t:
//                           dS = P·(dout_t·v_s − delta[t]),  dq_t = scale·Σ_s dS·k_s.
// attention_backward_dkv:   one invocation per key row s, query rows t >= s stream through workgroup
//                           memory (q, dout, lse, delta): dv_s = Σ_t P·dout_t, dk_s = scale·Σ_t dS·q_t.
// Every output element is written by exactly one invocation, summing in a fixed order: deterministic,
// no atomics. Invocations keep q/k/v rows in private arrays of HS_MAX floats, so hs <= 128 (GPT-2 uses
// 64); the host checks it. Workgroup memory: 2 tiles of 1536 floats plus 64 floats (12.5 KiB).

struct Dims {
  batch: u32,
  seq: u32,
  channels: u32,
  heads: u32,
  hs: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> lse_out: array<f32>;
@group(0) @binding(4) var<storage, read> out_in: array<f32>;
@group(0) @binding(5) var<storage, read> dout: array<f32>;
@group(0) @binding(6) var<storage, read_write> delta_out: array<f32>;
@group(0) @binding(7) var<storage, read> lse_in: array<f32>;
@group(0) @binding(8) var<storage, read> delta_in: array<f32>;
@group(0) @binding(9) var<storage, read_write> dqkv: array<f32>;

const QB: u32 = 64u; // rows (queries, or keys in dkv) per workgroup, one per invocation
const HS_MAX: u32 = 128u;
const KT_MAX: u32 = 32u; // most rows per streamed tile
const TILE: u32 = 1536u; // floats per workgroup tile array
const NEG_BIG: f32 = -3.0e38; // finite "−∞" for the running max (exp(NEG_BIG − s) is exactly 0)

var<workgroup> tile_a: array<f32, TILE>; // k rows (forward, dq) or q rows (dkv)
var<workgroup> tile_b: array<f32, TILE>; // v rows (forward, dq) or dout rows (dkv)
var<workgroup> tile_lse: array<f32, KT_MAX>;
var<workgroup> tile_delta: array<f32, KT_MAX>;

struct Block {
  b: u32,
  h: u32,
  row0: u32, // first row of the block
}

fn block_of(wid: vec3u, nwg: vec3u) -> Block {
  let blocks = (dims.seq + QB - 1u) / QB;
  let g = wid.y * nwg.x + wid.x;
  let bh = g / blocks;
  return Block(bh / dims.heads, bh % dims.heads, (g % blocks) * QB);
}

fn tile_rows() -> u32 {
  return min(KT_MAX, TILE / dims.hs);
}

// Offset of element 0 of head h's q (part 0), k (1) or v (2) in row (b, t) of qkv.
fn qkv_at(b: u32, t: u32, part: u32, h: u32) -> u32 {
  return (b * dims.seq + t) * 3u * dims.channels + part * dims.channels + h * dims.hs;
}

// Offset of element 0 of head h in row (b, t) of a [B, T, C] tensor.
fn row_at(b: u32, t: u32, h: u32) -> u32 {
  return (b * dims.seq + t) * dims.channels + h * dims.hs;
}

fn stat_at(b: u32, h: u32, t: u32) -> u32 {
  return (b * dims.heads + h) * dims.seq + t;
}

// Loads rows r0 .. r0 + n − 1 of parts pa and pb of head h into tile_a and tile_b (n·hs floats each).
fn load_qkv_tiles(lid: u32, b: u32, h: u32, r0: u32, n: u32, pa: u32, pb: u32) {
  let hs = dims.hs;
  for (var e = lid; e < n * hs; e += QB) {
    let r = r0 + e / hs;
    let d = e % hs;
    tile_a[e] = qkv[qkv_at(b, r, pa, h) + d];
    tile_b[e] = qkv[qkv_at(b, r, pb, h) + d];
  }
}

@compute @workgroup_size(QB)
fn attention_forward(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let blk = block_of(wid, nwg);
  if (blk.b >= dims.batch) {
    return; // surplus workgroup of a folded grid (uniform)
  }
  let hs = dims.hs;
  let tk = tile_rows();
  let t = blk.row0 + lid;
  let live = t < dims.seq;
  var q: array<f32, HS_MAX>;
  var acc: array<f32, HS_MAX>;
  var sc: array<f32, KT_MAX>;
  if (live) {
    let qo = qkv_at(blk.b, t, 0u, blk.h);
    for (var d = 0u; d < hs; d++) {
      q[d] = qkv[qo + d];
      acc[d] = 0.0;
    }
  }
  var m = NEG_BIG;
  var l = 0.0;
  let kend = min(dims.seq, blk.row0 + QB); // keys any row of this block can see
  for (var k0 = 0u; k0 < kend; k0 += tk) {
    let n = min(tk, kend - k0);
    workgroupBarrier(); // the previous tile is no longer being read
    load_qkv_tiles(lid, blk.b, blk.h, k0, n, 1u, 2u);
    workgroupBarrier();
    if (live && t >= k0) {
      let nk = min(n, t + 1u - k0); // causal: keys k0 .. t
      var mt = NEG_BIG;
      for (var j = 0u; j < nk; j++) {
        var s = 0.0;
        for (var d = 0u; d < hs; d++) {
          s += q[d] * tile_a[j * hs + d];
        }
        s *= dims.scale;
        sc[j] = s;
        mt = max(mt, s);
      }
      let mn = max(m, mt);
      let c = exp(m - mn);
      l *= c;
      for (var d = 0u; d < hs; d++) {
        acc[d] *= c;
      }
      for (var j = 0u; j < nk; j++) {
        let p = exp(sc[j] - mn);
        l += p;
        for (var d = 0u; d < hs; d++) {
          acc[d] += p * tile_b[j * hs + d];
        }
      }
      m = mn;
    }
  }
  if (live) {
    let o = row_at(blk.b, t, blk.h);
    for (var d = 0u; d < hs; d++) {
      out[o + d] = acc[d] / l;
    }
    lse_out[stat_at(blk.b, blk.h, t)] = m + log(l);
  }
}

@compute @workgroup_size(256)
fn attention_backward_delta(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = (wid.y * nwg.x + wid.x) * 256u + lid; // (b·NH + h)·T + t
  if (i >= dims.batch * dims.heads * dims.seq) {
    return;
  }
  let t = i % dims.seq;
  let bh = i / dims.seq;
  let o = row_at(bh / dims.heads, t, bh % dims.heads);
  var s = 0.0;
  for (var d = 0u; d < dims.hs; d++) {
    s += dout[o + d] * out_in[o + d];
  }
  delta_out[i] = s;
}

@compute @workgroup_size(QB)
fn attention_backward_dq(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let blk = block_of(wid, nwg);
  if (blk.b >= dims.batch) {
    return;
  }
  let hs = dims.hs;
  let tk = tile_rows();
  let t = blk.row0 + lid;
  let live = t < dims.seq;
  var q: array<f32, HS_MAX>;
  var g: array<f32, HS_MAX>; // dout_t
  var dq: array<f32, HS_MAX>;
  var lse = 0.0;
  var delta = 0.0;
  if (live) {
    let qo = qkv_at(blk.b, t, 0u, blk.h);
    let go = row_at(blk.b, t, blk.h);
    for (var d = 0u; d < hs; d++) {
      q[d] = qkv[qo + d];
      g[d] = dout[go + d];
      dq[d] = 0.0;
    }
    lse = lse_in[stat_at(blk.b, blk.h, t)];
    delta = delta_in[stat_at(blk.b, blk.h, t)];
  }
  let kend = min(dims.seq, blk.row0 + QB);
  for (var k0 = 0u; k0 < kend; k0 += tk) {
    let n = min(tk, kend - k0);
    workgroupBarrier();
    load_qkv_tiles(lid, blk.b, blk.h, k0, n, 1u, 2u);
    workgroupBarrier();
    if (live && t >= k0) {
      let nk = min(n, t + 1u - k0);
      for (var j = 0u; j < nk; j++) {
        var s = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < hs; d++) {
          s += q[d] * tile_a[j * hs + d];
          dp += g[d] * tile_b[j * hs + d];
        }
        let ds = exp(s * dims.scale - lse) * (dp - delta);
        for (var d = 0u; d < hs; d++) {
          dq[d] += ds * tile_a[j * hs + d];
        }
      }
    }
  }
  if (live) {
    let o = qkv_at(blk.b, t, 0u, blk.h);
    for (var d = 0u; d < hs; d++) {
      dqkv[o + d] = dq[d] * dims.scale;
    }
  }
}

@compute @workgroup_size(QB)
fn attention_backward_dkv(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let blk = block_of(wid, nwg);
  if (blk.b >= dims.batch) {
    return;
  }
  let hs = dims.hs;
  let tq = tile_rows();
  let s = blk.row0 + lid; // this invocation's key row
  let live = s < dims.seq;
  var k: array<f32, HS_MAX>;
  var v: array<f32, HS_MAX>;
  var dk: array<f32, HS_MAX>;
  var dv: array<f32, HS_MAX>;
  if (live) {
    let ko = qkv_at(blk.b, s, 1u, blk.h);
    let vo = qkv_at(blk.b, s, 2u, blk.h);
    for (var d = 0u; d < hs; d++) {
      k[d] = qkv[ko + d];
      v[d] = qkv[vo + d];
      dk[d] = 0.0;
      dv[d] = 0.0;
    }
  }
  // Query rows t >= row0 can see some key of this block.
  for (var t0 = blk.row0; t0 < dims.seq; t0 += tq) {
    let n = min(tq, dims.seq - t0);
    workgroupBarrier();
    for (var e = lid; e < n * hs; e += QB) {
      let r = t0 + e / hs;
      let d = e % hs;
      tile_a[e] = qkv[qkv_at(blk.b, r, 0u, blk.h) + d];
      tile_b[e] = dout[row_at(blk.b, r, blk.h) + d];
    }
    if (lid < n) {
      tile_lse[lid] = lse_in[stat_at(blk.b, blk.h, t0 + lid)];
      tile_delta[lid] = delta_in[stat_at(blk.b, blk.h, t0 + lid)];
    }
    workgroupBarrier();
    if (live && s < t0 + n) {
      // causal: query rows max(t0, s) .. t0 + n − 1
      for (var j = select(0u, s - t0, s > t0); j < n; j++) {
        var sc = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < hs; d++) {
          sc += tile_a[j * hs + d] * k[d];
          dp += tile_b[j * hs + d] * v[d];
        }
        let p = exp(sc * dims.scale - tile_lse[j]);
        let ds = p * (dp - tile_delta[j]);
        for (var d = 0u; d < hs; d++) {
          dv[d] += p * tile_b[j * hs + d];
          dk[d] += ds * tile_a[j * hs + d];
        }
      }
    }
  }
  if (live) {
    let ko = qkv_at(blk.b, s, 1u, blk.h);
    let vo = qkv_at(blk.b, s, 2u, blk.h);
    for (var d = 0u; d < hs; d++) {
      dqkv[ko + d] = dk[d] * dims.scale;
      dqkv[vo + d] = dv[d];
    }
  }
}
