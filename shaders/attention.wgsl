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
// Every kernel is a chain of small matrix products on 32×32 tiles in workgroup memory. A workgroup
// is 64 invocations owning one (b, h, block of 32 rows); invocation (ly, lx) = (lid / 8, lid % 8)
// owns a 4×4 block of every 32×32 product: rows 4·ly .. 4·ly+3 and columns 4·lx .. 4·lx+3, held as
// a mat4x4f (no arrays indexed at run time, so a CPU Vulkan such as SwiftShader keeps them in
// registers; a 4×4 block costs 8 vec4 reads of workgroup memory per 64 multiply-adds). The head
// dimension goes through the tiles in HC chunks of 32 columns (HC = ceil(hs / 32), an override
// constant: 1 for hs <= 32, up to 4 for hs = 128); columns >= hs are zero in the tiles.
// Two kinds of product (both read row-major tiles, rows of 8 vec4):
//   st_xy: R[j][i] += x_row(4ly+i) · y_row(4lx+j) over 32 columns   (q·kᵀ-like; R column j = y row)
//   pv_xy: R[i] += Σ_k x[4ly+i][k] · y_row(k) restricted to columns 4lx..4lx+3   (P·v-like; R column
//          i = output row 4ly+i)
// Tile element (r, quad c4) lives at vec4 r·8 + (c4 ^ (r/4 % 8)) (an XOR swizzle: the 8 invocations
// that read 8 different rows of one quad column hit 8 different memory banks on a GPU).
//
// attention_forward:     per (b, h, 32 query rows), over key tiles k0 <= last row: S = q·kᵀ·scale
//                        (masked), the tile's row max through workgroup memory, then an online
//                        softmax: every invocation rescales its out accumulator and its partial row
//                        sum (over its own 4 key columns) by exp(m_old − m_new); P goes to workgroup
//                        memory and out += P·v. At the end the 8 partial sums of a row are added.
// attention_backward_dq: per (b, h, 32 query rows): first delta[t] = dout_t·out_t for its rows
//                        (written to the delta scratch for the next launch), then over key tiles:
//                        S = q·kᵀ, dP = dout·vᵀ, dS = P∘(dP − delta), dq += dS·k.
// attention_backward_dkv: per (b, h, 32 key rows), over query tiles t0 >= first key: Sᵀ = k·qᵀ,
//                        dPᵀ = v·doutᵀ, Pᵀ, dSᵀ, then dv += Pᵀ·dout and dk += dSᵀ·q.
// Every output element is written by exactly one invocation, summing in a fixed order: deterministic,
// no atomics. Workgroup memory: forward 3 tiles + nothing else (12 KiB), backward 4 tiles (16 KiB);
// the row reductions reuse a tile.

override HC: u32 = 1u; // 32-column chunks of the head: ceil(hs / 32), 1 .. 4

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

const BT: u32 = 32u; // rows (and columns) of a tile
const NEG_BIG: f32 = -3.0e38; // finite "−∞" for masked scores (exp(NEG_BIG − m) is exactly 0)

var<workgroup> ta: array<vec4f, 256>;
var<workgroup> tb: array<vec4f, 256>;
var<workgroup> tc: array<vec4f, 256>;
var<workgroup> td: array<vec4f, 256>;

fn sw(r: u32, c4: u32) -> u32 {
  return r * 8u + (c4 ^ ((r >> 2u) & 7u));
}

struct Block {
  b: u32,
  h: u32,
  row0: u32, // first row of the block (a multiple of 32)
}

// Workgroup → (b, h, row block). heavy_first: the last row block of each (b, h) comes first (the
// causal forward and dq do the most work there), so the longest workgroups start earliest.
fn block_of(wid: vec3u, nwg: vec3u, heavy_first: bool) -> Block {
  let blocks = (dims.seq + BT - 1u) / BT;
  let g = wid.y * nwg.x + wid.x;
  let bh = g / blocks;
  let i = g % blocks;
  return Block(bh / dims.heads, bh % dims.heads, select(i, blocks - 1u - i, heavy_first) * BT);
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

// Columns col .. col+3 of head h of row t, zero past the head or past the sequence. Indices are
// clamped into the row, so nothing out of range is read.
fn quad_mask(t: u32, col: u32) -> vec4<bool> {
  return (vec4u(col) + vec4u(0u, 1u, 2u, 3u) < vec4u(dims.hs)) & vec4<bool>(t < dims.seq);
}
fn qkv_quad(b: u32, t: u32, part: u32, h: u32, col: u32) -> vec4f {
  let o = qkv_at(b, min(t, dims.seq - 1u), part, h);
  let e = dims.hs - 1u;
  let v = vec4f(qkv[o + min(col, e)], qkv[o + min(col + 1u, e)], qkv[o + min(col + 2u, e)], qkv[o + min(col + 3u, e)]);
  return select(vec4f(0.0), v, quad_mask(t, col));
}
fn dout_quad(b: u32, t: u32, h: u32, col: u32) -> vec4f {
  let o = row_at(b, min(t, dims.seq - 1u), h);
  let e = dims.hs - 1u;
  let v = vec4f(dout[o + min(col, e)], dout[o + min(col + 1u, e)], dout[o + min(col + 2u, e)], dout[o + min(col + 3u, e)]);
  return select(vec4f(0.0), v, quad_mask(t, col));
}
fn out_quad(b: u32, t: u32, h: u32, col: u32) -> vec4f {
  let o = row_at(b, min(t, dims.seq - 1u), h);
  let e = dims.hs - 1u;
  let v = vec4f(out_in[o + min(col, e)], out_in[o + min(col + 1u, e)], out_in[o + min(col + 2u, e)], out_in[o + min(col + 3u, e)]);
  return select(vec4f(0.0), v, quad_mask(t, col));
}

// ---- 4×4 block products over 32×32 tiles (see the header) ----

fn st_ab(acc: mat4x4f, ly: u32, lx: u32) -> mat4x4f {
  var r = acc;
  for (var d = 0u; d < 8u; d++) {
    let x = mat4x4f(ta[sw(4u * ly, d)], ta[sw(4u * ly + 1u, d)], ta[sw(4u * ly + 2u, d)], ta[sw(4u * ly + 3u, d)]);
    let y = mat4x4f(tb[sw(4u * lx, d)], tb[sw(4u * lx + 1u, d)], tb[sw(4u * lx + 2u, d)], tb[sw(4u * lx + 3u, d)]);
    r += transpose(x) * y;
  }
  return r;
}
fn st_cd(acc: mat4x4f, ly: u32, lx: u32) -> mat4x4f {
  var r = acc;
  for (var d = 0u; d < 8u; d++) {
    let x = mat4x4f(tc[sw(4u * ly, d)], tc[sw(4u * ly + 1u, d)], tc[sw(4u * ly + 2u, d)], tc[sw(4u * ly + 3u, d)]);
    let y = mat4x4f(td[sw(4u * lx, d)], td[sw(4u * lx + 1u, d)], td[sw(4u * lx + 2u, d)], td[sw(4u * lx + 3u, d)]);
    r += transpose(x) * y;
  }
  return r;
}
fn pv_ab(acc: mat4x4f, ly: u32, lx: u32) -> mat4x4f {
  var r = acc;
  for (var k = 0u; k < 8u; k++) {
    let p = mat4x4f(ta[sw(4u * ly, k)], ta[sw(4u * ly + 1u, k)], ta[sw(4u * ly + 2u, k)], ta[sw(4u * ly + 3u, k)]);
    let v = mat4x4f(tb[sw(4u * k, lx)], tb[sw(4u * k + 1u, lx)], tb[sw(4u * k + 2u, lx)], tb[sw(4u * k + 3u, lx)]);
    r += v * p;
  }
  return r;
}
fn pv_cd(acc: mat4x4f, ly: u32, lx: u32) -> mat4x4f {
  var r = acc;
  for (var k = 0u; k < 8u; k++) {
    let p = mat4x4f(tc[sw(4u * ly, k)], tc[sw(4u * ly + 1u, k)], tc[sw(4u * ly + 2u, k)], tc[sw(4u * ly + 3u, k)]);
    let v = mat4x4f(td[sw(4u * k, lx)], td[sw(4u * k + 1u, lx)], td[sw(4u * k + 2u, lx)], td[sw(4u * k + 3u, lx)]);
    r += v * p;
  }
  return r;
}

// Scales column i of m (output row i) by f[i].
fn scale_cols(m: mat4x4f, f: vec4f) -> mat4x4f {
  return mat4x4f(m[0] * f.x, m[1] * f.y, m[2] * f.z, m[3] * f.w);
}

// Stores v into columns col .. col+3 of a row at offset o of out / dqkv, those below hs only.
fn store_out(o: u32, col: u32, v: vec4f) {
  let hs = dims.hs;
  if (col < hs) { out[o + col] = v.x; }
  if (col + 1u < hs) { out[o + col + 1u] = v.y; }
  if (col + 2u < hs) { out[o + col + 2u] = v.z; }
  if (col + 3u < hs) { out[o + col + 3u] = v.w; }
}
fn store_dqkv(o: u32, col: u32, v: vec4f) {
  let hs = dims.hs;
  if (col < hs) { dqkv[o + col] = v.x; }
  if (col + 1u < hs) { dqkv[o + col + 1u] = v.y; }
  if (col + 2u < hs) { dqkv[o + col + 2u] = v.z; }
  if (col + 3u < hs) { dqkv[o + col + 3u] = v.w; }
}

// Rows rows[i] (those < T) of chunk ch of out: column i of o divided by l[i].
fn store_out_rows(b: u32, h: u32, rows: vec4u, col: u32, o: mat4x4f, l: vec4f) {
  let T = dims.seq;
  if (rows.x < T) { store_out(row_at(b, rows.x, h), col, o[0] / l.x); }
  if (rows.y < T) { store_out(row_at(b, rows.y, h), col, o[1] / l.y); }
  if (rows.z < T) { store_out(row_at(b, rows.z, h), col, o[2] / l.z); }
  if (rows.w < T) { store_out(row_at(b, rows.w, h), col, o[3] / l.w); }
}
// Rows rows[i] (those < T) of part `part` of dqkv: column i of g times f.
fn store_dqkv_rows(b: u32, h: u32, part: u32, rows: vec4u, col: u32, g: mat4x4f, f: f32) {
  let T = dims.seq;
  if (rows.x < T) { store_dqkv(qkv_at(b, rows.x, part, h), col, g[0] * f); }
  if (rows.y < T) { store_dqkv(qkv_at(b, rows.y, part, h), col, g[1] * f); }
  if (rows.z < T) { store_dqkv(qkv_at(b, rows.z, part, h), col, g[2] * f); }
  if (rows.w < T) { store_dqkv(qkv_at(b, rows.w, part, h), col, g[3] * f); }
}

// The sum over the 8 invocations of row group ly of their vec4 `v` (through ta; fixed order).
// Call in uniform control flow; ta must be free (it is overwritten).
fn row_group_sum(lid: u32, ly: u32, v: vec4f) -> vec4f {
  workgroupBarrier();
  ta[lid] = v;
  workgroupBarrier();
  var s = ta[ly * 8u];
  for (var u = 1u; u < 8u; u++) {
    s += ta[ly * 8u + u];
  }
  return s;
}

@compute @workgroup_size(64)
fn attention_forward(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let blk = block_of(wid, nwg, true);
  if (blk.b >= dims.batch) {
    return; // surplus workgroup of a folded grid (uniform)
  }
  let b = blk.b;
  let h = blk.h;
  let q0 = blk.row0;
  let T = dims.seq;
  let ly = lid / 8u;
  let lx = lid % 8u;
  let rows = vec4u(q0 + 4u * ly) + vec4u(0u, 1u, 2u, 3u); // this invocation's query rows
  var m = vec4f(NEG_BIG); // running row max (the same in the 8 invocations of a row group)
  var l = vec4f(0.0); // partial row sums over this invocation's key columns
  var o0 = mat4x4f(); // out rows (columns of the matrices), head columns 32·c + 4·lx .. +3
  var o1 = mat4x4f();
  var o2 = mat4x4f();
  var o3 = mat4x4f();
  let kend = min(q0 + BT, T); // keys any row of this block can see
  for (var k0 = 0u; k0 < kend; k0 += BT) {
    var s = mat4x4f();
    for (var ch = 0u; ch < HC; ch++) {
      workgroupBarrier(); // the previous tiles are no longer being read
      for (var e = lid; e < 256u; e += 64u) {
        let r = e / 8u;
        let c = 32u * ch + 4u * (e % 8u);
        ta[sw(r, e % 8u)] = qkv_quad(b, q0 + r, 0u, h, c);
        tb[sw(r, e % 8u)] = qkv_quad(b, k0 + r, 1u, h, c);
      }
      workgroupBarrier();
      s = st_ab(s, ly, lx);
    }
    // Scale and mask: key k0 + 4·lx + j is visible to row t iff key <= t (and key < T).
    let kb = k0 + 4u * lx;
    let sc = dims.scale;
    s = mat4x4f(
      select(vec4f(NEG_BIG), s[0] * sc, (vec4u(kb) <= rows) & vec4<bool>(kb < T)),
      select(vec4f(NEG_BIG), s[1] * sc, (vec4u(kb + 1u) <= rows) & vec4<bool>(kb + 1u < T)),
      select(vec4f(NEG_BIG), s[2] * sc, (vec4u(kb + 2u) <= rows) & vec4<bool>(kb + 2u < T)),
      select(vec4f(NEG_BIG), s[3] * sc, (vec4u(kb + 3u) <= rows) & vec4<bool>(kb + 3u < T)),
    );
    // Row max over the tile: this invocation's 4 columns, then the 8 invocations of the row group
    // (td is free in the forward). Every row sees key k0 (k0 <= q0 <= row), so mx is finite.
    td[lid] = max(max(s[0], s[1]), max(s[2], s[3]));
    workgroupBarrier(); // td written; every invocation is done reading ta and tb
    var mx = td[ly * 8u];
    for (var u = 1u; u < 8u; u++) {
      mx = max(mx, td[ly * 8u + u]);
    }
    let mn = max(m, mx);
    let alpha = exp(m - mn);
    m = mn;
    let p = mat4x4f(exp(s[0] - mn), exp(s[1] - mn), exp(s[2] - mn), exp(s[3] - mn));
    l = l * alpha + ((p[0] + p[1]) + (p[2] + p[3]));
    o0 = scale_cols(o0, alpha);
    if (HC > 1u) { o1 = scale_cols(o1, alpha); }
    if (HC > 2u) { o2 = scale_cols(o2, alpha); }
    if (HC > 3u) { o3 = scale_cols(o3, alpha); }
    // P rows (query 4·ly + i, keys 4·lx .. +3) into ta; then out += P·v, chunk by chunk of v in tb.
    let pt = transpose(p);
    ta[sw(4u * ly, lx)] = pt[0];
    ta[sw(4u * ly + 1u, lx)] = pt[1];
    ta[sw(4u * ly + 2u, lx)] = pt[2];
    ta[sw(4u * ly + 3u, lx)] = pt[3];
    for (var ch = 0u; ch < HC; ch++) {
      if (ch > 0u) {
        workgroupBarrier(); // the previous v chunk is no longer being read
      }
      for (var e = lid; e < 256u; e += 64u) {
        tb[sw(e / 8u, e % 8u)] = qkv_quad(b, k0 + e / 8u, 2u, h, 32u * ch + 4u * (e % 8u));
      }
      workgroupBarrier();
      if (ch == 0u) {
        o0 = pv_ab(o0, ly, lx);
      } else if (ch == 1u) {
        o1 = pv_ab(o1, ly, lx);
      } else if (ch == 2u) {
        o2 = pv_ab(o2, ly, lx);
      } else {
        o3 = pv_ab(o3, ly, lx);
      }
    }
  }
  let lsum = row_group_sum(lid, ly, l);
  let c = 4u * lx;
  store_out_rows(b, h, rows, c, o0, lsum);
  if (HC > 1u) { store_out_rows(b, h, rows, c + 32u, o1, lsum); }
  if (HC > 2u) { store_out_rows(b, h, rows, c + 64u, o2, lsum); }
  if (HC > 3u) { store_out_rows(b, h, rows, c + 96u, o3, lsum); }
  if (lx == 0u) {
    let lse = m + log(lsum);
    if (rows.x < T) { lse_out[stat_at(b, h, rows.x)] = lse.x; }
    if (rows.y < T) { lse_out[stat_at(b, h, rows.y)] = lse.y; }
    if (rows.z < T) { lse_out[stat_at(b, h, rows.z)] = lse.z; }
    if (rows.w < T) { lse_out[stat_at(b, h, rows.w)] = lse.w; }
  }
}

fn lse_quad(b: u32, h: u32, rows: vec4u) -> vec4f {
  let T = dims.seq;
  let o = stat_at(b, h, 0u);
  return vec4f(
    select(0.0, lse_in[o + min(rows.x, T - 1u)], rows.x < T),
    select(0.0, lse_in[o + min(rows.y, T - 1u)], rows.y < T),
    select(0.0, lse_in[o + min(rows.z, T - 1u)], rows.z < T),
    select(0.0, lse_in[o + min(rows.w, T - 1u)], rows.w < T),
  );
}
fn delta_quad(b: u32, h: u32, rows: vec4u) -> vec4f {
  let T = dims.seq;
  let o = stat_at(b, h, 0u);
  return vec4f(
    select(0.0, delta_in[o + min(rows.x, T - 1u)], rows.x < T),
    select(0.0, delta_in[o + min(rows.y, T - 1u)], rows.y < T),
    select(0.0, delta_in[o + min(rows.z, T - 1u)], rows.z < T),
    select(0.0, delta_in[o + min(rows.w, T - 1u)], rows.w < T),
  );
}

@compute @workgroup_size(64)
fn attention_backward_dq(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let blk = block_of(wid, nwg, true);
  if (blk.b >= dims.batch) {
    return;
  }
  let b = blk.b;
  let h = blk.h;
  let q0 = blk.row0;
  let T = dims.seq;
  let ly = lid / 8u;
  let lx = lid % 8u;
  let rows = vec4u(q0 + 4u * ly) + vec4u(0u, 1u, 2u, 3u);
  // delta = dout·out for this block's rows: this invocation's columns 4·lx + 32·c .. +3, then the
  // row group's 8 partial sums.
  var part = vec4f(0.0);
  for (var ch = 0u; ch < HC; ch++) {
    let c = 32u * ch + 4u * lx;
    part += vec4f(
      dot(dout_quad(b, rows.x, h, c), out_quad(b, rows.x, h, c)),
      dot(dout_quad(b, rows.y, h, c), out_quad(b, rows.y, h, c)),
      dot(dout_quad(b, rows.z, h, c), out_quad(b, rows.z, h, c)),
      dot(dout_quad(b, rows.w, h, c), out_quad(b, rows.w, h, c)),
    );
  }
  let delta = row_group_sum(lid, ly, part);
  if (lx == 0u) {
    if (rows.x < T) { delta_out[stat_at(b, h, rows.x)] = delta.x; }
    if (rows.y < T) { delta_out[stat_at(b, h, rows.y)] = delta.y; }
    if (rows.z < T) { delta_out[stat_at(b, h, rows.z)] = delta.z; }
    if (rows.w < T) { delta_out[stat_at(b, h, rows.w)] = delta.w; }
  }
  let lse = lse_quad(b, h, rows);
  var g0 = mat4x4f(); // dq rows (columns of the matrices), head columns 32·c + 4·lx .. +3
  var g1 = mat4x4f();
  var g2 = mat4x4f();
  var g3 = mat4x4f();
  let kend = min(q0 + BT, T);
  for (var k0 = 0u; k0 < kend; k0 += BT) {
    var s = mat4x4f();
    var dp = mat4x4f();
    for (var ch = 0u; ch < HC; ch++) {
      workgroupBarrier();
      for (var e = lid; e < 256u; e += 64u) {
        let r = e / 8u;
        let c = 32u * ch + 4u * (e % 8u);
        let i = sw(r, e % 8u);
        ta[i] = qkv_quad(b, q0 + r, 0u, h, c);
        tb[i] = qkv_quad(b, k0 + r, 1u, h, c);
        tc[i] = dout_quad(b, q0 + r, h, c);
        td[i] = qkv_quad(b, k0 + r, 2u, h, c);
      }
      workgroupBarrier();
      s = st_ab(s, ly, lx); // q·kᵀ
      dp = st_cd(dp, ly, lx); // dout·vᵀ
    }
    let kb = k0 + 4u * lx;
    let sc = dims.scale;
    let p0 = select(vec4f(0.0), exp(s[0] * sc - lse), (vec4u(kb) <= rows) & vec4<bool>(kb < T));
    let p1 = select(vec4f(0.0), exp(s[1] * sc - lse), (vec4u(kb + 1u) <= rows) & vec4<bool>(kb + 1u < T));
    let p2 = select(vec4f(0.0), exp(s[2] * sc - lse), (vec4u(kb + 2u) <= rows) & vec4<bool>(kb + 2u < T));
    let p3 = select(vec4f(0.0), exp(s[3] * sc - lse), (vec4u(kb + 3u) <= rows) & vec4<bool>(kb + 3u < T));
    let ds = transpose(mat4x4f(p0 * (dp[0] - delta), p1 * (dp[1] - delta), p2 * (dp[2] - delta), p3 * (dp[3] - delta)));
    workgroupBarrier(); // every invocation is done reading the tiles
    ta[sw(4u * ly, lx)] = ds[0];
    ta[sw(4u * ly + 1u, lx)] = ds[1];
    ta[sw(4u * ly + 2u, lx)] = ds[2];
    ta[sw(4u * ly + 3u, lx)] = ds[3];
    // dq += dS·k, k chunk by chunk in tb; the last chunk is still there, so go downwards.
    for (var i = 0u; i < HC; i++) {
      let ch = HC - 1u - i;
      if (i > 0u) {
        workgroupBarrier();
        for (var e = lid; e < 256u; e += 64u) {
          tb[sw(e / 8u, e % 8u)] = qkv_quad(b, k0 + e / 8u, 1u, h, 32u * ch + 4u * (e % 8u));
        }
      }
      workgroupBarrier();
      if (ch == 0u) {
        g0 = pv_ab(g0, ly, lx);
      } else if (ch == 1u) {
        g1 = pv_ab(g1, ly, lx);
      } else if (ch == 2u) {
        g2 = pv_ab(g2, ly, lx);
      } else {
        g3 = pv_ab(g3, ly, lx);
      }
    }
  }
  let c = 4u * lx;
  let sc = dims.scale;
  store_dqkv_rows(b, h, 0u, rows, c, g0, sc);
  if (HC > 1u) { store_dqkv_rows(b, h, 0u, rows, c + 32u, g1, sc); }
  if (HC > 2u) { store_dqkv_rows(b, h, 0u, rows, c + 64u, g2, sc); }
  if (HC > 3u) { store_dqkv_rows(b, h, 0u, rows, c + 96u, g3, sc); }
}

@compute @workgroup_size(64)
fn attention_backward_dkv(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let blk = block_of(wid, nwg, false);
  if (blk.b >= dims.batch) {
    return;
  }
  let b = blk.b;
  let h = blk.h;
  let s0 = blk.row0;
  let T = dims.seq;
  let ly = lid / 8u;
  let lx = lid % 8u;
  let keys = vec4u(s0 + 4u * ly) + vec4u(0u, 1u, 2u, 3u); // this invocation's key rows
  var k0m = mat4x4f(); // dk rows (columns of the matrices), head columns 32·c + 4·lx .. +3
  var k1m = mat4x4f();
  var k2m = mat4x4f();
  var k3m = mat4x4f();
  var v0m = mat4x4f(); // dv likewise
  var v1m = mat4x4f();
  var v2m = mat4x4f();
  var v3m = mat4x4f();
  // Query tiles t0 >= s0 see some key of this block (s0 is a multiple of 32).
  for (var t0 = s0; t0 < T; t0 += BT) {
    var st = mat4x4f();
    var dpt = mat4x4f();
    for (var ch = 0u; ch < HC; ch++) {
      workgroupBarrier();
      for (var e = lid; e < 256u; e += 64u) {
        let r = e / 8u;
        let c = 32u * ch + 4u * (e % 8u);
        let i = sw(r, e % 8u);
        ta[i] = qkv_quad(b, s0 + r, 2u, h, c); // v
        tb[i] = dout_quad(b, t0 + r, h, c); // dout
        tc[i] = qkv_quad(b, s0 + r, 1u, h, c); // k
        td[i] = qkv_quad(b, t0 + r, 0u, h, c); // q
      }
      workgroupBarrier();
      st = st_cd(st, ly, lx); // k·qᵀ: st[j][i] = k_(4ly+i) · q_(4lx+j)
      dpt = st_ab(dpt, ly, lx); // v·doutᵀ
    }
    // Query column j is t = t0 + 4·lx + j: visible to key s iff s <= t (and t < T).
    let tq = vec4u(t0 + 4u * lx) + vec4u(0u, 1u, 2u, 3u);
    let lse = lse_quad(b, h, tq);
    let del = delta_quad(b, h, tq);
    let sc = dims.scale;
    let p0 = select(vec4f(0.0), exp(st[0] * sc - lse.x), (keys <= vec4u(tq.x)) & vec4<bool>(tq.x < T));
    let p1 = select(vec4f(0.0), exp(st[1] * sc - lse.y), (keys <= vec4u(tq.y)) & vec4<bool>(tq.y < T));
    let p2 = select(vec4f(0.0), exp(st[2] * sc - lse.z), (keys <= vec4u(tq.z)) & vec4<bool>(tq.z < T));
    let p3 = select(vec4f(0.0), exp(st[3] * sc - lse.w), (keys <= vec4u(tq.w)) & vec4<bool>(tq.w < T));
    let pt = transpose(mat4x4f(p0, p1, p2, p3)); // column i: key 4·ly + i over queries 4·lx + j
    let dst = transpose(mat4x4f(p0 * (dpt[0] - del.x), p1 * (dpt[1] - del.y), p2 * (dpt[2] - del.z), p3 * (dpt[3] - del.w)));
    workgroupBarrier(); // every invocation is done reading the tiles
    ta[sw(4u * ly, lx)] = pt[0];
    ta[sw(4u * ly + 1u, lx)] = pt[1];
    ta[sw(4u * ly + 2u, lx)] = pt[2];
    ta[sw(4u * ly + 3u, lx)] = pt[3];
    tc[sw(4u * ly, lx)] = dst[0];
    tc[sw(4u * ly + 1u, lx)] = dst[1];
    tc[sw(4u * ly + 2u, lx)] = dst[2];
    tc[sw(4u * ly + 3u, lx)] = dst[3];
    // dv += Pᵀ·dout (tb), dk += dSᵀ·q (td); the last chunks are still there, so go downwards.
    for (var i = 0u; i < HC; i++) {
      let ch = HC - 1u - i;
      if (i > 0u) {
        workgroupBarrier();
        for (var e = lid; e < 256u; e += 64u) {
          let r = e / 8u;
          let c = 32u * ch + 4u * (e % 8u);
          tb[sw(r, e % 8u)] = dout_quad(b, t0 + r, h, c);
          td[sw(r, e % 8u)] = qkv_quad(b, t0 + r, 0u, h, c);
        }
      }
      workgroupBarrier();
      if (ch == 0u) {
        v0m = pv_ab(v0m, ly, lx);
        k0m = pv_cd(k0m, ly, lx);
      } else if (ch == 1u) {
        v1m = pv_ab(v1m, ly, lx);
        k1m = pv_cd(k1m, ly, lx);
      } else if (ch == 2u) {
        v2m = pv_ab(v2m, ly, lx);
        k2m = pv_cd(k2m, ly, lx);
      } else {
        v3m = pv_ab(v3m, ly, lx);
        k3m = pv_cd(k3m, ly, lx);
      }
    }
  }
  let c = 4u * lx;
  let sc = dims.scale;
  store_dqkv_rows(b, h, 1u, keys, c, k0m, sc);
  store_dqkv_rows(b, h, 2u, keys, c, v0m, 1.0);
  if (HC > 1u) {
    store_dqkv_rows(b, h, 1u, keys, c + 32u, k1m, sc);
    store_dqkv_rows(b, h, 2u, keys, c + 32u, v1m, 1.0);
  }
  if (HC > 2u) {
    store_dqkv_rows(b, h, 1u, keys, c + 64u, k2m, sc);
    store_dqkv_rows(b, h, 2u, keys, c + 64u, v2m, 1.0);
  }
  if (HC > 3u) {
    store_dqkv_rows(b, h, 1u, keys, c + 96u, k3m, sc);
    store_dqkv_rows(b, h, 2u, keys, c + 96u, v3m, 1.0);
  }
}
