// Top-k selection on the GPU, the twin of src/compress/topk/topk.ts: the same k elements (largest |x|,
// ties to the lower index), found without a sort and without a CPU round trip between passes.
// All comparisons are on the bits of |x| (f32 bits with the sign cleared), which order like |x| for
// finite values; x is bound as array<u32> and kept values are copied as bits, so subnormals, -0 and
// every other pattern pass through untouched (no float arithmetic, no flush to zero).
//
// Launch order (src/compress/topk/topk.gpu.ts builds it; one compute pass, each dispatch sees the
// previous one's writes):
//   topk_select  stage 0   1 workgroup: zero the histograms, state ← (prefix 0, above 0, need k)
//   topk_hist    pass 0    `parts` workgroups (grid-stride): histogram of bits 30..20 of |x| (2048 bins)
//   topk_select  stage 1   1 workgroup: sum the 8 histogram copies; the bin d holding the need-th
//                          largest (walking from the top, a suffix scan over the workgroup); prefix ← d,
//                          above += count above d, need −= that; zero the bins
//   topk_hist    pass 1    bits 19..10 (1024 bins) of the |x| whose bits 30..20 equal the prefix
//   topk_select  stage 2
//   topk_hist    pass 2    bits 9..0 of the |x| whose bits 30..10 equal the prefix
//   topk_select  stage 3   prefix is now T, the exact bits of the k-th largest |x|; ties = need =
//                          k − #{|x| > T}, how many |x| = T are kept (the lowest-indexed ones)
//   topk_count             one invocation per segment of seg_len contiguous elements: #{|x| > T}, #{|x| = T}
//   topk_scan              1 workgroup: exclusive prefix sums of both counts over the segments
//   topk_compact(_ef)      one invocation per segment: walks it in index order, writing each kept
//                          element at #{|x| > T before i} + min(#{|x| = T before i}, ties)
// The histograms use atomicAdd (counts are order-free, so exact and deterministic); everything else is
// fixed-order integer arithmetic. Only the single-workgroup launches (select, scan) use workgroup
// memory and barriers: on SwiftShader one workgroupBarrier costs ~0.7 ms per workgroup (a 4096-workgroup
// dispatch: ~3 s with one barrier, ~15–40 ms without), and a first version with per-workgroup
// histograms and per-workgroup scans in the compaction took 6.7 s for n = 2^20 against 0.17 s now.
// Output `kept`: words [0, k) the kept indices (ascending), words [k, 2k) their values' f32 bits. The
// host serialises those with topk.ts's topkPack.
//
// Error feedback: topk_ef_prepare writes d = (base − local) + residual (IEEE f32, round to nearest
// even, done in integer arithmetic so subnormals are exact on GPUs that flush them), the selection runs
// on d, and topk_compact_ef also writes residual ← d − decode(payload): 0 where kept, d where dropped.
// If d holds NaN or ±Inf (state word BAD, set from the top 8 bins of the first histogram) the residual
// is left as it was; those values have the largest |x| bits, so they are always kept and the host's
// encode refuses them. A decay β ≠ 1 (d = (base − local) + β·residual, override EF_DECAY) is computed
// as JavaScript does, in f64, by ef_mul_add; ef_prepare also flags the first non-finite Δ and d;
// topk_scatter writes the host's residual corrections at the kept positions when the kept values go
// through a lossy value codec. src/sync/gpu-encoder.ts runs these for the donor's update.

struct Dims {
  n: u32,       // elements
  k: u32,       // values kept, 1 <= k <= n
  stage: u32,   // topk_hist: pass 0..2; topk_select: 0 (init) or 1..3 (after hist pass stage − 1)
  segs: u32,    // segments of seg_len contiguous elements (count / compact: one invocation each)
  parts: u32,   // topk_hist workgroups
  seg_len: u32,
  decay_hi: u32, // error-feedback prepare: the decay β as f64 bits (high word, low word);
  decay_lo: u32, // β = 1 is 0x3ff00000, 0
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> hist: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> state: array<u32>;
@group(0) @binding(4) var<storage, read_write> kept: array<u32>;
@group(0) @binding(5) var<storage, read_write> residual: array<u32>;
@group(0) @binding(6) var<storage, read> base_w: array<u32>;
@group(0) @binding(7) var<storage, read> local_w: array<u32>;
@group(0) @binding(8) var<storage, read_write> d_out: array<u32>;
// ef_prepare: [0] the first i whose base − local is NaN or ±Inf, [1] the first i whose d is
// (0xffffffff: none; the host writes both before the launch).
@group(0) @binding(9) var<storage, read_write> ef_flags: array<atomic<u32>>;

const WG: u32 = 256u;
const BINS: u32 = 2048u;
const REPLICAS: u32 = 8u; // copies of the histogram; part p adds into copy p % 8 (less contention)
const ABS: u32 = 0x7fffffffu;
const SIGN: u32 = 0x80000000u;
const INF_BITS: u32 = 0x7f800000u;
const NAN_BITS: u32 = 0x7fc00000u;

// state words: the selection state, then (gt, eq) per segment.
const S_PREFIX: u32 = 0u; // digits of T chosen so far
const S_ABOVE: u32 = 1u;  // #{|x| > any value with this prefix}
const S_NEED: u32 = 2u;   // rank of T among the values with this prefix
const S_BAD: u32 = 3u;    // 1 when some |x| >= Inf (NaN or ±Inf)
const S_T: u32 = 4u;      // the threshold bits (after stage 3)
const S_TIES: u32 = 5u;   // |x| = T values kept (after stage 3)
const S_SEGS: u32 = 8u;   // segment s: words S_SEGS + 2s (gt), + 1 (eq); counts, then exclusive sums

var<workgroup> wg_a: array<u32, WG>;
var<workgroup> wg_b: array<u32, WG>;

// Pass p looks at bits [shift, shift + width) of |x|: (20, 11), (10, 10), (0, 10).
fn pass_shift(p: u32) -> u32 {
  return 20u - 10u * p;
}

fn pass_width(p: u32) -> u32 {
  return select(10u, 11u, p == 0u);
}

fn linear_group(wid: vec3u, nwg: vec3u) -> u32 {
  return wid.y * nwg.x + wid.x;
}

// Grid-stride over the input; global atomics straight into this part's copy of the histogram.
// No workgroup memory and no barriers (SwiftShader runs a shader with barriers ~50× slower).
@compute @workgroup_size(WG)
fn topk_hist(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let part = linear_group(wid, nwg);
  if (part >= dims.parts) {
    return;
  }
  let shift = pass_shift(dims.stage);
  let width = pass_width(dims.stage);
  let top = shift + width;
  let digit = (1u << width) - 1u;
  let prefix = state[S_PREFIX];
  let copy = (part % REPLICAS) * BINS;
  let stride = dims.parts * WG;
  for (var i = part * WG + lid; i < dims.n; i += stride) {
    let a = x[i] & ABS;
    if ((a >> top) == prefix) {
      atomicAdd(&hist[copy + ((a >> shift) & digit)], 1u);
    }
  }
}

@compute @workgroup_size(WG)
fn topk_select(@builtin(local_invocation_index) lid: u32) {
  if (dims.stage == 0u) {
    for (var b = lid; b < REPLICAS * BINS; b += WG) {
      atomicStore(&hist[b], 0u);
    }
    if (lid == 0u) {
      state[S_PREFIX] = 0u;
      state[S_ABOVE] = 0u;
      state[S_NEED] = dims.k;
      state[S_BAD] = 0u;
      state[S_T] = 0u;
      state[S_TIES] = 0u;
    }
    return;
  }
  let p = dims.stage - 1u;
  let width = pass_width(p);
  let per = (1u << width) / WG; // bins per invocation: 8, then 4
  let lo = lid * per;
  let need = state[S_NEED];
  // Fold the copies into copy 0 (each invocation owns bins lo .. lo + per − 1 in every copy).
  var s = 0u;
  for (var j = 0u; j < per; j++) {
    var c = 0u;
    for (var r = 0u; r < REPLICAS; r++) {
      c += atomicLoad(&hist[r * BINS + lo + j]);
      atomicStore(&hist[r * BINS + lo + j], 0u); // cleared for the next pass
    }
    atomicStore(&hist[lo + j], c);
    s += c;
  }
  // Inclusive suffix sums over the invocations (Hillis–Steele): wg_a[t] = Σ_{u >= t} s_u.
  wg_a[lid] = s;
  workgroupBarrier();
  for (var off = 1u; off < WG; off <<= 1u) {
    var v = wg_a[lid];
    if (lid + off < WG) {
      v += wg_a[lid + off];
    }
    workgroupBarrier();
    wg_a[lid] = v;
    workgroupBarrier();
  }
  let incl = wg_a[lid];
  let excl = incl - s; // values in the bins above this invocation's
  if (excl < need && need <= incl) {
    // Exactly one invocation: walk its bins from the top until the count reaches need.
    var acc = excl;
    var d = lo;
    for (var j = 0u; j < per; j++) {
      d = lo + per - 1u - j;
      let h = atomicLoad(&hist[d]);
      if (acc + h >= need) {
        break;
      }
      acc += h;
    }
    let prefix = (state[S_PREFIX] << width) | d;
    state[S_PREFIX] = prefix;
    state[S_ABOVE] = state[S_ABOVE] + acc;
    state[S_NEED] = need - acc;
    if (p == 2u) {
      state[S_T] = prefix;
      state[S_TIES] = need - acc;
    }
  }
  // Bins 0x7f8..0x7ff of the first pass hold |x| >= Inf bits (NaN, ±Inf).
  if (p == 0u && lid == WG - 1u && s != 0u) {
    state[S_BAD] = 1u;
  }
  // Each invocation read only its own bins of copy 0: clear them for the next pass.
  for (var j = 0u; j < per; j++) {
    atomicStore(&hist[lo + j], 0u);
  }
}

// Segment of invocation `seg`: elements [seg · seg_len, min(n, (seg + 1) · seg_len)).
fn seg_range(seg: u32) -> vec2u {
  let i0 = seg * dims.seg_len;
  return vec2u(i0, min(dims.n, i0 + dims.seg_len));
}

@compute @workgroup_size(WG)
fn topk_count(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let seg = linear_group(wid, nwg) * WG + lid;
  if (seg >= dims.segs) {
    return;
  }
  let t = state[S_T];
  let r = seg_range(seg);
  var gt = 0u;
  var eq = 0u;
  for (var i = r.x; i < r.y; i++) {
    let a = x[i] & ABS;
    gt += select(0u, 1u, a > t);
    eq += select(0u, 1u, a == t);
  }
  state[S_SEGS + 2u * seg] = gt;
  state[S_SEGS + 2u * seg + 1u] = eq;
}

// Exclusive prefix sums over the segments, in place. Invocation t owns a contiguous run of segments.
@compute @workgroup_size(WG)
fn topk_scan(@builtin(local_invocation_index) lid: u32) {
  let per = (dims.segs + WG - 1u) / WG;
  let s0 = min(lid * per, dims.segs);
  let s1 = min(s0 + per, dims.segs);
  var gt = 0u;
  var eq = 0u;
  for (var s = s0; s < s1; s++) {
    gt += state[S_SEGS + 2u * s];
    eq += state[S_SEGS + 2u * s + 1u];
  }
  wg_a[lid] = gt;
  wg_b[lid] = eq;
  workgroupBarrier();
  for (var off = 1u; off < WG; off <<= 1u) {
    var va = wg_a[lid];
    var vb = wg_b[lid];
    if (lid >= off) {
      va += wg_a[lid - off];
      vb += wg_b[lid - off];
    }
    workgroupBarrier();
    wg_a[lid] = va;
    wg_b[lid] = vb;
    workgroupBarrier();
  }
  var run_gt = wg_a[lid] - gt;
  var run_eq = wg_b[lid] - eq;
  for (var s = s0; s < s1; s++) {
    let cg = state[S_SEGS + 2u * s];
    let ce = state[S_SEGS + 2u * s + 1u];
    state[S_SEGS + 2u * s] = run_gt;
    state[S_SEGS + 2u * s + 1u] = run_eq;
    run_gt += cg;
    run_eq += ce;
  }
}

// One element of a segment walk: gt, eq count the |x| > T and |x| = T seen so far (over the whole
// input); writes the element to `kept` at its rank if it is kept, and says whether it was.
fn compact_one(i: u32, bits: u32, t: u32, ties: u32, gt: ptr<function, u32>, eq: ptr<function, u32>) -> bool {
  let a = bits & ABS;
  let keep = a > t || (a == t && *eq < ties);
  if (keep) {
    let pos = *gt + min(*eq, ties);
    kept[pos] = i;
    kept[dims.k + pos] = bits;
  }
  if (a > t) {
    *gt += 1u;
  } else if (a == t) {
    *eq += 1u;
  }
  return keep;
}

@compute @workgroup_size(WG)
fn topk_compact(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let seg = linear_group(wid, nwg) * WG + lid;
  if (seg >= dims.segs) {
    return;
  }
  let t = state[S_T];
  let ties = state[S_TIES];
  var gt = state[S_SEGS + 2u * seg];
  var eq = state[S_SEGS + 2u * seg + 1u];
  let r = seg_range(seg);
  for (var i = r.x; i < r.y; i++) {
    _ = compact_one(i, x[i], t, ties, &gt, &eq);
  }
}

// Also residual ← d − decode: d − d = +0 where kept, d − 0 = d (bit for bit, -0 included) where
// dropped; left unchanged if d held NaN or ±Inf.
@compute @workgroup_size(WG)
fn topk_compact_ef(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let seg = linear_group(wid, nwg) * WG + lid;
  if (seg >= dims.segs) {
    return;
  }
  let t = state[S_T];
  let ties = state[S_TIES];
  let bad = state[S_BAD] != 0u;
  var gt = state[S_SEGS + 2u * seg];
  var eq = state[S_SEGS + 2u * seg + 1u];
  let r = seg_range(seg);
  for (var i = r.x; i < r.y; i++) {
    let bits = x[i];
    let keep = compact_one(i, bits, t, ties, &gt, &eq);
    if (!bad) {
      residual[i] = select(bits, 0u, keep);
    }
  }
}

// a + b for f32 bit patterns, IEEE round to nearest even, subnormals exact (never flushed).
// Any NaN or ±Inf operand gives NaN (the host refuses non-finite updates anyway); overflow gives ±Inf.
fn add_bits(a: u32, b: u32) -> u32 {
  let aa = a & ABS;
  let ab = b & ABS;
  if (aa >= INF_BITS || ab >= INF_BITS) {
    return NAN_BITS;
  }
  let swap = ab > aa;
  let hi = select(a, b, swap); // the operand of larger magnitude gives the sign
  let lo = select(b, a, swap);
  var eh = (hi & ABS) >> 23u;
  var el = (lo & ABS) >> 23u;
  var mh = hi & 0x7fffffu;
  var ml = lo & 0x7fffffu;
  if (eh == 0u) { eh = 1u; } else { mh |= 0x800000u; }
  if (el == 0u) { el = 1u; } else { ml |= 0x800000u; }
  // Significands at bits 29..6, 6 guard bits below; bits shifted out of ml are jammed into bit 0.
  mh <<= 6u;
  ml <<= 6u;
  let dsh = eh - el;
  if (dsh >= 31u) {
    ml = select(0u, 1u, ml != 0u);
  } else if (dsh > 0u) {
    let lost = ml & ((1u << dsh) - 1u);
    ml = (ml >> dsh) | select(0u, 1u, lost != 0u);
  }
  let sign = hi & SIGN;
  var e = eh;
  var m = 0u;
  if (((a ^ b) & SIGN) == 0u) {
    m = mh + ml;
    if (m >= (1u << 30u)) {
      m = (m >> 1u) | (m & 1u);
      e += 1u;
    }
    if (m == 0u) {
      return sign; // ±0 + ±0 of the same sign
    }
  } else {
    m = mh - ml;
    if (m == 0u) {
      return 0u; // x − x = +0
    }
  }
  // Normalise; stop at exponent 1 (the result is then subnormal, same LSB weight).
  if (m < (1u << 29u)) {
    let s = min(29u - firstLeadingBit(m), e - 1u);
    m <<= s;
    e -= s;
  }
  let g = m & 63u;
  var q = m >> 6u;
  if (g > 32u || (g == 32u && (q & 1u) == 1u)) {
    q += 1u;
  }
  // The implicit bit (2^23 in q) adds 1 to the exponent field; a rounding carry to 2^24 adds another.
  let r = min(((e - 1u) << 23u) + q, INF_BITS);
  return sign | r;
}

// ---------------------------------------------------------------------------------------------------
// d = delta + β·residual for a decay β < 1, as ErrorFeedback computes it in JavaScript: the product
// β·r in f64 (β an f64, r an f32), the sum in f64, then rounded to f32: three roundings to nearest
// even, emulated exactly on integer significands (an f32 multiply would differ in about one d in six
// for β = 0.9, and a residual that drifts by an ulp changes bytes rounds later). Significands are
// 64-bit integers in vec2u (x the low word); the 77-bit product of β's and r's has a third word.

// a·b as (low word, high word), from 16-bit halves.
fn mul_wide(a: u32, b: u32) -> vec2u {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let b0 = b & 0xffffu;
  let b1 = b >> 16u;
  let p00 = a0 * b0;
  let p01 = a0 * b1;
  let p10 = a1 * b0;
  let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu); // < 3·2^16
  return vec2u((p00 & 0xffffu) | (mid << 16u), a1 * b1 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u));
}

fn add2(a: vec2u, b: vec2u) -> vec2u {
  let x = a.x + b.x;
  return vec2u(x, a.y + b.y + select(0u, 1u, x < a.x));
}

// a − b for a >= b.
fn sub2(a: vec2u, b: vec2u) -> vec2u {
  return vec2u(a.x - b.x, a.y - b.y - select(0u, 1u, a.x < b.x));
}

// a >> s and a << s for s in [0, 64), branch-free: a word move, then a bit shift whose carried-over
// part is shifted in two steps so that a shift by 0 carries nothing.
fn shr2(a: vec2u, s: u32) -> vec2u {
  let v = select(vec2u(a.y, 0u), a, s < 32u);
  let k = s & 31u;
  return vec2u((v.x >> k) | ((v.y << (31u - k)) << 1u), v.y >> k);
}

fn shl2(a: vec2u, s: u32) -> vec2u {
  let v = select(vec2u(0u, a.x), a, s < 32u);
  let k = s & 31u;
  return vec2u(v.x << k, (v.y << k) | ((v.x >> (31u - k)) >> 1u));
}

// Whether any of bits [0, s) of a is set (s <= 64).
fn low_any2(a: vec2u, s: u32) -> bool {
  let t = vec2u(clamp(vec2i(i32(s)) - vec2i(0, 32), vec2i(0), vec2i(32)));
  let mask = select((vec2u(1u) << t) - vec2u(1u), vec2u(0xffffffffu), t == vec2u(32u));
  return any((a & mask) != vec2u(0u));
}

fn lead2(a: vec2u) -> i32 {
  if (a.y != 0u) {
    return 32 + i32(firstLeadingBit(a.y));
  }
  if (a.x != 0u) {
    return i32(firstLeadingBit(a.x));
  }
  return -1;
}

// round(a / 2^s) to nearest even, 1 <= s < 64.
fn rne_shr2(a: vec2u, s: u32) -> vec2u {
  let h = shr2(a, s - 1u); // the half bit in bit 0
  let q = shr2(h, 1u);
  if ((h.x & 1u) != 0u && (low_any2(a, s - 1u) || (q.x & 1u) != 0u)) {
    return add2(q, vec2u(1u, 0u));
  }
  return q;
}

// A finite nonzero |f32| (bits) as m · 2^e with m in [2^23, 2^24).
struct Sig {
  m: u32,
  e: i32,
}

fn unpack_f32(a: u32) -> Sig {
  let x = a >> 23u;
  if (x == 0u) {
    let l = firstLeadingBit(a);
    return Sig(a << (23u - l), i32(l) - 172);
  }
  return Sig((a & 0x7fffffu) | 0x800000u, i32(x) - 150);
}

// Guard bits below the larger addend's 53-bit significand in the f64 sum; the smaller addend's bits
// shifted out below them are jammed into bit 0 (sticky), which with 2 or more guard bits rounds right.
const GUARD: u32 = 8u;

// fround(d + β·r) as JavaScript evaluates `d + beta * r` (d, r f32 bits; β = (bh, bl) f64 bits, in
// {0} ∪ [2^-800, 1], so β·r and every nonzero sum are normal f64). NaN if d or r is NaN or ±Inf;
// ±Inf on overflow.
fn ef_mul_add(db: u32, rb: u32, bh: u32, bl: u32) -> u32 {
  if ((db & ABS) >= INF_BITS || (rb & ABS) >= INF_BITS) {
    return NAN_BITS;
  }
  if (bh == 0x3ff00000u && bl == 0u) {
    return add_bits(db, rb); // β = 1: β·r = r
  }
  let ra = rb & ABS;
  if (ra == 0u || (bh == 0u && bl == 0u)) {
    return add_bits(db, rb & SIGN); // β·r = ±0 with r's sign
  }
  // p = fl64(β·r) = mp · 2^ep, mp in [2^52, 2^53): the product of the significands is in
  // [2^75, 2^77), so its 53 leading bits start at bit sh = 23 or 24 and its remainder is in word 0.
  let r = unpack_f32(ra);
  let lo = mul_wide(bl, r.m);
  let hi = mul_wide((bh & 0xfffffu) | 0x100000u, r.m);
  let y = lo.y + hi.x;
  let prod = vec3u(lo.x, y, hi.y + select(0u, 1u, y < lo.y));
  var sh = select(23u, 24u, prod.z >= 0x1000u);
  var mp = vec2u((prod.x >> sh) | (prod.y << (32u - sh)), (prod.y >> sh) | (prod.z << (32u - sh)));
  let rem = prod.x & ((1u << sh) - 1u);
  let half = 1u << (sh - 1u);
  if (rem > half || (rem == half && (mp.x & 1u) != 0u)) {
    mp = add2(mp, vec2u(1u, 0u));
    if ((mp.y >> 21u) != 0u) {
      mp = vec2u(0u, 0x100000u); // rounded up to 2^53
      sh += 1u;
    }
  }
  let ep = i32((bh >> 20u) & 0x7ffu) - 1075 + r.e + i32(sh);
  let sp = rb & SIGN;
  // s = fl64(d + p) = ms · 2^es with sign ss.
  var ms = mp;
  var es = ep;
  var ss = sp;
  let da = db & ABS;
  if (da != 0u) {
    let dsig = unpack_f32(da);
    let md = vec2u(dsig.m << 29u, dsig.m >> 3u);
    let ed = dsig.e - 29;
    let sd = db & SIGN;
    let p_big = ep > ed || (ep == ed && (mp.y > md.y || (mp.y == md.y && mp.x >= md.x)));
    let eb = select(ed, ep, p_big);
    let a = shl2(select(md, mp, p_big), GUARD);
    let small = shl2(select(mp, md, p_big), GUARD);
    let dexp = u32(eb - select(ep, ed, p_big));
    var b: vec2u;
    if (dexp >= 64u) {
      b = vec2u(1u, 0u); // only the sticky bit is left
    } else {
      b = shr2(small, dexp);
      b.x |= select(0u, 1u, low_any2(small, dexp));
    }
    let sum = select(sub2(a, b), add2(a, b), sp == sd);
    let l = lead2(sum);
    if (l < 0) {
      return 0u; // exact cancellation: +0
    }
    if (l > 52) {
      var s2 = u32(l - 52);
      ms = rne_shr2(sum, s2);
      if ((ms.y >> 21u) != 0u) {
        ms = vec2u(0u, 0x100000u);
        s2 += 1u;
      }
      es = eb - i32(GUARD) + i32(s2);
    } else {
      ms = shl2(sum, u32(52 - l));
      es = eb - i32(GUARD) - (52 - l);
    }
    ss = select(sd, sp, p_big);
  }
  // fround(s): 24 significant bits, fewer below 2^-126 (the LSB stays 2^-149); a result at 2^128 is Inf.
  let e = es + 52; // s in [2^e, 2^(e+1))
  if (e > 127) {
    return ss | INF_BITS;
  }
  let s32 = u32(min(select(29 + (-126 - e), 29, e >= -126), 54));
  let q = rne_shr2(ms, s32).x;
  // The implicit bit (2^23 in q) adds 1 to the exponent field, a carry to 2^24 another.
  return ss | min((u32(max(e + 126, 0)) << 23u) + q, INF_BITS);
}

// Pipeline constant of the prepare entries: false for β = 1 (two add_bits; SwiftShader runs the
// entry ~2× slower when ef_mul_add is merely present), true for any other β.
override EF_DECAY: bool = false;

// Element i of the error-feedback prepare: (base − local bits, d bits).
fn ef_prepare_one(i: u32) -> vec2u {
  let delta = add_bits(base_w[i], local_w[i] ^ SIGN);
  if (EF_DECAY) {
    return vec2u(delta, ef_mul_add(delta, residual[i], dims.decay_hi, dims.decay_lo));
  }
  return vec2u(delta, add_bits(delta, residual[i]));
}

// d = (base − local) + β·residual (β = 1: two IEEE f32 adds).
@compute @workgroup_size(WG)
fn topk_ef_prepare(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = linear_group(wid, nwg) * WG + lid;
  if (i >= dims.n) {
    return;
  }
  d_out[i] = ef_prepare_one(i).y;
}

// topk_ef_prepare that also records the first non-finite base − local and d in ef_flags.
@compute @workgroup_size(WG)
fn ef_prepare(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = linear_group(wid, nwg) * WG + lid;
  if (i >= dims.n) {
    return;
  }
  let v = ef_prepare_one(i);
  d_out[i] = v.y;
  if ((v.x & ABS) >= INF_BITS) {
    atomicMin(&ef_flags[0], i);
  }
  if ((v.y & ABS) >= INF_BITS) {
    atomicMin(&ef_flags[1], i);
  }
}

// residual[kept[j]] ← bits kept[k + j] for j < k: the host's corrections d − decode(value) at the
// kept positions when the kept values are not sent exactly (an inner value codec other than f32).
@compute @workgroup_size(WG)
fn topk_scatter(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let j = linear_group(wid, nwg) * WG + lid;
  if (j >= dims.k) {
    return;
  }
  residual[kept[j]] = kept[dims.k + j];
}

// Test probe: case c = x[4c..4c+4) (d bits, r bits, β high word, β low word) → d_out[c] = ef_mul_add.
@compute @workgroup_size(WG)
fn probe_ef_mul_add(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let c = linear_group(wid, nwg) * WG + lid;
  if (c >= dims.n) {
    return;
  }
  d_out[c] = ef_mul_add(x[4u * c], x[4u * c + 1u], x[4u * c + 2u], x[4u * c + 3u]);
}
