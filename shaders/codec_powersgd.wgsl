// PowerSGD encoder for one 2-D tensor M [rows, cols] (row-major) at rank r <= 8: the GPU port of
// src/compress/powersgd.ts (launch builders and the GpuPowerSgd owner: src/gpu/kernels/codec-powersgd.ts).
// Its payload is what the CPU powerSgdCodec(rows, cols, r).decode reads: P~ [rows, r] then Q' [cols, r],
// f32, 4·r·(rows + cols) bytes. One encode is eight dispatches in one compute pass:
//
//   psgd_begin   1 invocation        state.maxbits <- 0
//   psgd_max     ceil(n/32) inv.     atomicMax of the |x| bit patterns of 32 contiguous elements each
//   psgd_setup   1 invocation        status (ok / tiny: max|M| < 2^-126 / bad: NaN or Inf), e = floor(log2 max|M|)
//                                     from the exponent bits; draw Q now if there is no warm start
//   psgd_draw    cols·r inv.         Q[i] = f32(powerSgdUniform(ctx, i)) if drawing (exactly rounded)
//   psgd_orth_q  1 workgroup of 64   Q^ = orth(Q) in place (ref: previous ||A^||_F, or the largest drawn column norm)
//   psgd_mq      rows inv.           P = A^·Q^ into the payload, and the row sums of squares of A^ (for ||A^||_F)
//   psgd_orth_p  1 workgroup of 64   P~ = orth(P) in place in the payload (ref ||A^||_F); state.q_ref <- ||A^||_F
//   psgd_mtp     max(rows, cols) inv. Q = A^T·P~ (kept as the warm start), Q' = 2^e·Q into the payload;
//                                     for a tiny input the whole payload <- 0, for a bad one <- NaN
//
// A^ = M·2^-e is never stored: every reader scales the input on the fly by two exact power-of-two
// multiplies (pow2 factors kept normal). Everything runs in f32; the degenerate-column threshold is
// tau = 2^-12 (the CPU's float64 uses 2^-30). A tiny or bad input leaves the warm start untouched.
// Only the two orth kernels use barriers (one workgroup each); every other kernel is barrier-free.
//
// Function-scope arrays are declared with an explicit `= array<f32, MAX_RANK>()`: Node's Dawn on
// SwiftShader did not re-zero `var d: array<f32, 8>;` declared inside a loop on later iterations (it
// kept the previous iteration's values), which broke the projections.

struct Params {
  rows: u32,
  cols: u32,
  r: u32,
  n: u32,   // rows·cols
  off: u32, // element offset of M in the bound input range
  s0: u32,  // ctx.seed, stream, round as (low, high) 32-bit words, as powersgd.ts's word()
  s1: u32,
  t0: u32,
  t1: u32,
  r0: u32,
  r1: u32,
  _pad: u32,
}

struct State {
  maxbits: atomic<u32>, // max |x| bits of this encode
  status: u32,          // ST_OK, ST_TINY, ST_BAD
  e: i32,               // floor(log2 max|M|)
  draw: u32,            // 1: psgd_draw writes Q this encode
  q_valid: u32,         // 0: no warm start (after construction or reset): the next ok encode draws
  q_ref: f32,           // ||A^||_F of the round that produced Q; 0: a fresh draw (use its largest column norm)
  normf: f32,           // ||A^||_F of this encode
  replaced_q: u32,      // bit k: column k of Q^ was replaced by a fresh direction this encode
  replaced_p: u32,      // likewise for P~
}

@group(0) @binding(0) var<uniform> prm: Params;
// M as f32 bits (read as u32 so the max pass sees NaN/Inf patterns untouched).
@group(0) @binding(1) var<storage, read> src: array<u32>;
// The matrix orthonormalised by psgd_orth_q / psgd_orth_p: Q [cols, r] or the payload's P [rows, r].
@group(0) @binding(2) var<storage, read_write> vbuf: array<f32>;
// Warm start Q [cols, r] in scaled units (A^T·P~ of the last round, or the draw).
@group(0) @binding(3) var<storage, read_write> qbuf: array<f32>;
// Payload as f32 bits: P~ [rows, r] then Q' [cols, r].
@group(0) @binding(4) var<storage, read_write> pay: array<u32>;
@group(0) @binding(5) var<storage, read_write> state: State;
// Sum over j of A^[i, j]^2 for each row i (psgd_mq → psgd_orth_p).
@group(0) @binding(6) var<storage, read_write> rowss: array<f32>;

const WG: u32 = 64u;
const MAX_RANK: u32 = 8u;
const CHUNK: u32 = 32u;  // elements per psgd_max invocation
const BLOCK: u32 = 64u;  // matmul sums are accumulated in blocks of this many terms, then summed
const ABS: u32 = 0x7fffffffu;
const F32_INF: u32 = 0x7f800000u;
const F32_NAN: u32 = 0x7fc00000u;
const F32_MIN_NORMAL: u32 = 0x00800000u; // 2^-126: POWERSGD_TINY
const TAU: f32 = 0.000244140625;         // 2^-12
const ST_OK: u32 = 0u;
const ST_TINY: u32 = 1u;
const ST_BAD: u32 = 2u;

// The builtins of the one-invocation-per-item kernels (grids fold to 2-D past the per-dimension limit).
struct Ids {
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
}

fn index_of(ids: Ids) -> u32 {
  return (ids.wid.y * ids.nwg.x + ids.wid.x) * WG + ids.lid;
}

// 2^k as f32 bits, k in [-126, 127].
fn pow2(k: i32) -> f32 {
  return bitcast<f32>(u32(k + 127) << 23u);
}

// x·2^k for k in [-127, 127] as two multiplies by normal powers of two (exact while x·2^k and the
// intermediate are normal; |k/2| <= |k - k/2| keeps the intermediate within 2^64 of x).
fn ldexp2(x: f32, k: i32) -> f32 {
  let a = k / 2;
  return (x * pow2(a)) * pow2(k - a);
}

// A^[i, j] = M[i, j]·2^-e.
fn ahat(i: u32, j: u32, e: i32) -> f32 {
  return ldexp2(bitcast<f32>(src[prm.off + i * prm.cols + j]), -e);
}

// ---------------------------------------------------------------------------------------------------
// Scale and status.

@compute @workgroup_size(1)
fn psgd_begin() {
  atomicStore(&state.maxbits, 0u);
}

@compute @workgroup_size(WG)
fn psgd_max(ids: Ids) {
  let c = index_of(ids);
  let lo = c * CHUNK;
  if (lo >= prm.n) {
    return;
  }
  let hi = min(prm.n, lo + CHUNK);
  var m = 0u;
  for (var i = lo; i < hi; i++) {
    m = max(m, src[prm.off + i] & ABS);
  }
  if (m != 0u) {
    atomicMax(&state.maxbits, m);
  }
}

@compute @workgroup_size(1)
fn psgd_setup() {
  let mb = atomicLoad(&state.maxbits);
  state.replaced_q = 0u;
  state.replaced_p = 0u;
  state.draw = 0u;
  if (mb >= F32_INF) {
    state.status = ST_BAD;
  } else if (mb < F32_MIN_NORMAL) {
    state.status = ST_TINY;
  } else {
    state.status = ST_OK;
    state.e = i32(mb >> 23u) - 127;
    if (state.q_valid == 0u) {
      state.draw = 1u;
      state.q_valid = 1u;
      state.q_ref = 0.0;
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// The initial Q: powersgd.ts's powerSgdUniform, rounded to f32 exactly.

fn mix32(v: u32) -> u32 {
  // lowbias32 (Wellons), as powersgd.ts's mix32 (u32 `*` wraps).
  var x = v;
  x ^= x >> 16u;
  x *= 0x7feb352du;
  x ^= x >> 15u;
  x *= 0x846ca68bu;
  x ^= x >> 16u;
  return x;
}

// f32((h + 0.5)·2^-31 − 1) = f32(t·2^-32) with t = 2h + 1 − 2^32, an odd integer in (−2^32, 2^32):
// |t| rounded to 24 significant bits, nearest even, in integer arithmetic (no u32 → f32 conversion
// of more than 24 bits), then scaled by an exact power of two (|t|·2^-32 >= 2^-32 is normal).
fn psgd_uniform(i: u32) -> f32 {
  var h = mix32(prm.s0 ^ 0x50535344u); // 'PSSD'
  h = mix32(h ^ prm.s1);
  h = mix32(h ^ prm.t0);
  h = mix32(h ^ prm.t1);
  h = mix32(h ^ prm.r0);
  h = mix32(h ^ prm.r1);
  h = mix32(h ^ i);
  let neg = h < 0x80000000u;
  let m = select(2u * (h - 0x80000000u) + 1u, 0xffffffffu - 2u * h, neg);
  var q = m;
  var sh = 0u;
  let lead = firstLeadingBit(m);
  if (lead > 23u) {
    sh = lead - 23u;
    q = m >> sh;
    let rem = m & ((1u << sh) - 1u);
    let half = 1u << (sh - 1u);
    if (rem > half || (rem == half && (q & 1u) == 1u)) {
      q += 1u; // may reach 2^24: still exact
    }
  }
  let mag = f32(q) * pow2(i32(sh) - 32);
  return select(mag, -mag, neg);
}

// Q[i] <- the draw, i < cols·r, when psgd_setup (or GpuPowerSgd.start) set state.draw.
@compute @workgroup_size(WG)
fn psgd_draw(ids: Ids) {
  let i = index_of(ids);
  if (i >= prm.cols * prm.r || state.draw == 0u) {
    return;
  }
  qbuf[i] = psgd_uniform(i);
}

// ---------------------------------------------------------------------------------------------------
// Orthonormalisation of vbuf [len, r] by one workgroup: classical Gram–Schmidt twice per column, a
// column whose norm is then <= thresh replaced by the coordinate vector least covered by the earlier
// columns (ties to the smallest index), as powersgd.ts's orthonormalizeColumns. Lane l owns rows
// j = l, l + 64, ..., so no lane reads another lane's storage writes; sums go through `red`.

var<workgroup> red: array<array<f32, MAX_RANK>, WG>;
var<workgroup> redj: array<u32, WG>;
var<workgroup> flag: u32;

// Sums the first cnt entries of v over the workgroup (fixed tree order); every lane gets the sums.
fn wg_sum(v: array<f32, MAX_RANK>, cnt: u32, lid: u32) -> array<f32, MAX_RANK> {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      for (var i = 0u; i < cnt; i++) {
        red[lid][i] += red[lid + s][i];
      }
    }
    workgroupBarrier();
  }
  let out = red[0];
  workgroupBarrier();
  return out;
}

// A value lane 0 holds, made uniform for control flow around barriers.
fn wg_broadcast(v: u32, lid: u32) -> u32 {
  if (lid == 0u) {
    flag = v;
  }
  return workgroupUniformLoad(&flag);
}

// Projects column k off columns 0..k−1 twice; returns its norm.
fn project(k: u32, len: u32, lid: u32) -> f32 {
  let r = prm.r;
  for (var sweep = 0u; sweep < 2u; sweep++) {
    var d = array<f32, MAX_RANK>();
    for (var j = lid; j < len; j += WG) {
      let v = vbuf[j * r + k];
      for (var i = 0u; i < k; i++) {
        d[i] += vbuf[j * r + i] * v;
      }
    }
    d = wg_sum(d, k, lid);
    for (var j = lid; j < len; j += WG) {
      var s = vbuf[j * r + k];
      for (var i = 0u; i < k; i++) {
        s -= d[i] * vbuf[j * r + i];
      }
      vbuf[j * r + k] = s;
    }
  }
  var nn = array<f32, MAX_RANK>();
  for (var j = lid; j < len; j += WG) {
    let v = vbuf[j * r + k];
    nn[0] += v * v;
  }
  return sqrt(wg_sum(nn, 1u, lid)[0]);
}

// The row j minimising sum_{i<k} vbuf[j, i]^2 (the smallest such j).
fn least_covered(k: u32, len: u32, lid: u32) -> u32 {
  let r = prm.r;
  var best_c = 3.0e38;
  var best_j = 0xffffffffu;
  for (var j = lid; j < len; j += WG) {
    var c = 0.0;
    for (var i = 0u; i < k; i++) {
      c += vbuf[j * r + i] * vbuf[j * r + i];
    }
    if (c < best_c) {
      best_c = c;
      best_j = j;
    }
  }
  red[lid][0] = best_c;
  redj[lid] = best_j;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      let c = red[lid + s][0];
      let j = redj[lid + s];
      if (c < red[lid][0] || (c == red[lid][0] && j < redj[lid])) {
        red[lid][0] = c;
        redj[lid] = j;
      }
    }
    workgroupBarrier();
  }
  let best = redj[0];
  workgroupBarrier();
  return best;
}

// Orthonormalises the r columns of vbuf [len, r]; returns the replaced columns as a bit mask.
fn orthonormalize(len: u32, thresh: f32, lid: u32) -> u32 {
  let r = prm.r;
  var replaced = 0u;
  for (var k = 0u; k < r; k++) {
    var nrm = project(k, len, lid);
    if (wg_broadcast(select(0u, 1u, !(nrm > thresh)), lid) != 0u) {
      replaced |= 1u << k;
      let best = least_covered(k, len, lid);
      for (var j = lid; j < len; j += WG) {
        vbuf[j * r + k] = select(0.0, 1.0, j == best);
      }
      nrm = project(k, len, lid);
    }
    let inv = 1.0 / nrm;
    for (var j = lid; j < len; j += WG) {
      vbuf[j * r + k] *= inv;
    }
  }
  return replaced;
}

// Exits unless this encode's input is ok (uniformly, for the barriers that follow).
fn status_ok(lid: u32) -> bool {
  return wg_broadcast(state.status, lid) == ST_OK;
}

// vbuf = Q [cols, r]: Q^ = orth(Q) with threshold tau·ref, ref the previous round's ||A^||_F, or for a
// fresh draw (q_ref = 0) the largest column norm.
@compute @workgroup_size(WG)
fn psgd_orth_q(@builtin(local_invocation_index) lid: u32) {
  if (!status_ok(lid)) {
    return;
  }
  let r = prm.r;
  let len = prm.cols;
  var rf = state.q_ref;
  if (wg_broadcast(select(0u, 1u, rf == 0.0), lid) != 0u) {
    var ss = array<f32, MAX_RANK>();
    for (var j = lid; j < len; j += WG) {
      for (var k = 0u; k < r; k++) {
        ss[k] += vbuf[j * r + k] * vbuf[j * r + k];
      }
    }
    ss = wg_sum(ss, r, lid);
    rf = 0.0;
    for (var k = 0u; k < r; k++) {
      rf = max(rf, sqrt(ss[k]));
    }
  }
  let replaced = orthonormalize(len, TAU * rf, lid);
  if (lid == 0u) {
    state.replaced_q = replaced;
  }
}

// vbuf = the payload's P [rows, r]: P~ = orth(P) with threshold tau·||A^||_F; ||A^||_F becomes the next
// round's reference for Q.
@compute @workgroup_size(WG)
fn psgd_orth_p(@builtin(local_invocation_index) lid: u32) {
  if (!status_ok(lid)) {
    return;
  }
  var part = array<f32, MAX_RANK>();
  for (var i = lid; i < prm.rows; i += WG) {
    part[0] += rowss[i];
  }
  let normf = sqrt(wg_sum(part, 1u, lid)[0]);
  let replaced = orthonormalize(prm.rows, TAU * normf, lid);
  if (lid == 0u) {
    state.replaced_p = replaced;
    state.normf = normf;
    state.q_ref = normf;
  }
}

// ---------------------------------------------------------------------------------------------------
// The two products, one invocation per output row, sums in blocks of BLOCK terms.

// P[i, :] = A^[i, :]·Q^ into the payload, rowss[i] = sum_j A^[i, j]^2.
@compute @workgroup_size(WG)
fn psgd_mq(ids: Ids) {
  let i = index_of(ids);
  if (i >= prm.rows || state.status != ST_OK) {
    return;
  }
  let r = prm.r;
  let cols = prm.cols;
  let e = state.e;
  var acc = array<f32, MAX_RANK>();
  var ss = 0.0;
  for (var j0 = 0u; j0 < cols; j0 += BLOCK) {
    var part = array<f32, MAX_RANK>();
    var ps = 0.0;
    for (var j = j0; j < min(cols, j0 + BLOCK); j++) {
      let a = ahat(i, j, e);
      ps += a * a;
      for (var k = 0u; k < r; k++) {
        part[k] += a * qbuf[j * r + k];
      }
    }
    for (var k = 0u; k < r; k++) {
      acc[k] += part[k];
    }
    ss += ps;
  }
  for (var k = 0u; k < r; k++) {
    pay[i * r + k] = bitcast<u32>(acc[k]);
  }
  rowss[i] = ss;
}

// Q[j, :] = (A^T·P~)[j, :] (the warm start) and Q'[j, :] = 2^e·Q[j, :] into the payload. Invocation t
// also writes P~ row t and Q' row t as 0 (tiny input) or NaN (NaN/Inf input) when the input is not ok.
@compute @workgroup_size(WG)
fn psgd_mtp(ids: Ids) {
  let t = index_of(ids);
  let rows = prm.rows;
  let cols = prm.cols;
  let r = prm.r;
  if (t >= max(rows, cols)) {
    return;
  }
  let st = state.status;
  if (st != ST_OK) {
    let fill = select(0u, F32_NAN, st == ST_BAD);
    for (var k = 0u; k < r; k++) {
      if (t < rows) {
        pay[t * r + k] = fill;
      }
      if (t < cols) {
        pay[rows * r + t * r + k] = fill;
      }
    }
    return;
  }
  if (t >= cols) {
    return;
  }
  let e = state.e;
  var acc = array<f32, MAX_RANK>();
  for (var i0 = 0u; i0 < rows; i0 += BLOCK) {
    var part = array<f32, MAX_RANK>();
    for (var i = i0; i < min(rows, i0 + BLOCK); i++) {
      let a = ahat(i, t, e);
      for (var k = 0u; k < r; k++) {
        part[k] += a * bitcast<f32>(pay[i * r + k]);
      }
    }
    for (var k = 0u; k < r; k++) {
      acc[k] += part[k];
    }
  }
  for (var k = 0u; k < r; k++) {
    qbuf[t * r + k] = acc[k];
    pay[rows * r + t * r + k] = bitcast<u32>(ldexp2(acc[k], e));
  }
}
