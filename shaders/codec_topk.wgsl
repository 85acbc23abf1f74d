// Top-k selection on the GPU, the twin of src/compress/topk.ts: the same k elements (largest |x|,
// ties to the lower index), found without a sort and without a CPU round trip between passes.
// All comparisons are on the bits of |x| (f32 bits with the sign cleared), which order like |x| for
// finite values; x is bound as array<u32> and kept values are copied as bits, so subnormals, -0 and
// every other pattern pass through untouched (no float arithmetic, no flush to zero).
//
// Launch order (src/gpu/kernels/codec-topk.ts builds it; one compute pass, each dispatch sees the
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
// encode refuses them.

struct Dims {
  n: u32,       // elements
  k: u32,       // values kept, 1 <= k <= n
  stage: u32,   // topk_hist: pass 0..2; topk_select: 0 (init) or 1..3 (after hist pass stage − 1)
  segs: u32,    // segments of seg_len contiguous elements (count / compact: one invocation each)
  parts: u32,   // topk_hist workgroups
  seg_len: u32,
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
  d_out[i] = add_bits(add_bits(base_w[i], local_w[i] ^ SIGN), residual[i]);
}
