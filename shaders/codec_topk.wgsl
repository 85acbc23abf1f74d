// Top-k selection on the GPU, the twin of src/compress/topk.ts: the same k elements (largest |x|,
// ties to the lower index), found without a sort and without a CPU round trip between passes.
// All comparisons are on the bits of |x| (f32 bits with the sign cleared), which order like |x| for
// finite values; x is bound as array<u32> and kept values are copied as bits, so subnormals, -0 and
// every other pattern pass through untouched (no float arithmetic, no flush to zero).
//
// Launch order (src/gpu/kernels/codec-topk.ts builds it; one compute pass, each dispatch sees the
// previous one's writes):
//   topk_select  stage 0      1 workgroup: zero the 2048-bin histogram, state ← (prefix 0, above 0, need k)
//   topk_hist    pass 0      `parts` workgroups: histogram of bits 30..20 of |x| (2048 bins)
//   topk_select  stage 1      1 workgroup: the bin d holding the need-th largest (walking from the top),
//                             prefix ← d, above += count above d, need −= that; zero the bins
//   topk_hist    pass 1       bits 19..10 (1024 bins) of the |x| whose bits 30..20 equal the prefix
//   topk_select  stage 2
//   topk_hist    pass 2       bits 9..0 of the |x| whose bits 30..10 equal the prefix
//   topk_select  stage 3      prefix is now T, the exact bits of the k-th largest |x|; ties = need =
//                             k − #{|x| > T}, how many |x| = T are kept (the lowest-indexed ones)
//   topk_count               `groups` workgroups of CHUNK = 1024 elements: #{|x| > T}, #{|x| = T}
//   topk_scan                1 workgroup: exclusive prefix sums of both counts over the groups
//   topk_compact(_ef)        `groups` workgroups: each writes its kept elements in index order at
//                             position #{|x| > T before i} + min(#{|x| = T before i}, ties)
// The histograms use atomicAdd (counts are order-free, so exact and deterministic); everything else is
// fixed-order integer arithmetic. Output `kept`: words [0, k) the kept indices (ascending), words
// [k, 2k) their values' f32 bits. The host serialises those with topk.ts's topkPack.
//
// Error feedback: topk_ef_prepare writes d = (base − local) + residual (IEEE f32, round to nearest
// even, done in integer arithmetic so subnormals are exact on GPUs that flush them), the selection runs
// on d, and topk_compact_ef also writes residual ← d − decode(payload): 0 where kept, d where dropped.
// If d holds NaN or ±Inf (state word BAD, set from the top 8 bins of the first histogram) the residual
// is left as it was; those values have the largest |x| bits, so they are always kept and the host's
// encode refuses them.

struct Dims {
  n: u32,      // elements
  k: u32,      // values kept, 1 <= k <= n
  stage: u32,  // topk_hist: pass 0..2; topk_select: 0 (init) or 1..3 (after hist pass stage − 1)
  groups: u32, // compaction workgroups, ceil(n / CHUNK)
  parts: u32,  // topk_hist workgroups
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
const PER: u32 = 4u;        // elements per invocation in count / compact
const CHUNK: u32 = 1024u;   // WG · PER elements per compaction workgroup
const ABS: u32 = 0x7fffffffu;
const SIGN: u32 = 0x80000000u;
const INF_BITS: u32 = 0x7f800000u;
const NAN_BITS: u32 = 0x7fc00000u;

// state words: the selection state, then (gt, eq) per compaction group.
const S_PREFIX: u32 = 0u; // digits of T chosen so far
const S_ABOVE: u32 = 1u;  // #{|x| > any value with this prefix}
const S_NEED: u32 = 2u;   // rank of T among the values with this prefix
const S_BAD: u32 = 3u;    // 1 when some |x| >= Inf (NaN or ±Inf)
const S_T: u32 = 4u;      // the threshold bits (after stage 3)
const S_TIES: u32 = 5u;   // |x| = T values kept (after stage 3)
const S_GROUPS: u32 = 8u; // group g: words S_GROUPS + 2g (gt), + 1 (eq); counts, then exclusive sums

var<workgroup> wg_hist: array<atomic<u32>, BINS>;
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
  for (var b = lid; b < BINS; b += WG) {
    atomicStore(&wg_hist[b], 0u);
  }
  workgroupBarrier();
  let stride = dims.parts * WG;
  for (var i = part * WG + lid; i < dims.n; i += stride) {
    let a = x[i] & ABS;
    if ((a >> top) == prefix) {
      atomicAdd(&wg_hist[(a >> shift) & digit], 1u);
    }
  }
  workgroupBarrier();
  for (var b = lid; b <= digit; b += WG) {
    let c = atomicLoad(&wg_hist[b]);
    if (c != 0u) {
      atomicAdd(&hist[b], c);
    }
  }
}

@compute @workgroup_size(WG)
fn topk_select(@builtin(local_invocation_index) lid: u32) {
  if (dims.stage == 0u) {
    for (var b = lid; b < BINS; b += WG) {
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
  var s = 0u;
  for (var j = 0u; j < per; j++) {
    s += atomicLoad(&hist[lo + j]);
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
  // Each invocation read only its own bins: clear them for the next pass.
  for (var j = 0u; j < per; j++) {
    atomicStore(&hist[lo + j], 0u);
  }
}

// This invocation's elements of group g are i0 .. i0 + PER − 1.
fn first_element(g: u32, lid: u32) -> u32 {
  return g * CHUNK + lid * PER;
}

// (#{|x| > t}, #{|x| = t}) packed as gt | eq << 16 (each at most CHUNK).
fn count_packed(i0: u32, t: u32) -> u32 {
  var c = 0u;
  for (var j = 0u; j < PER; j++) {
    let i = i0 + j;
    if (i < dims.n) {
      let a = x[i] & ABS;
      c += select(0u, 1u, a > t) + select(0u, 0x10000u, a == t);
    }
  }
  return c;
}

@compute @workgroup_size(WG)
fn topk_count(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let g = linear_group(wid, nwg);
  if (g >= dims.groups) {
    return;
  }
  wg_a[lid] = count_packed(first_element(g, lid), state[S_T]);
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      wg_a[lid] += wg_a[lid + s];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    state[S_GROUPS + 2u * g] = wg_a[0] & 0xffffu;
    state[S_GROUPS + 2u * g + 1u] = wg_a[0] >> 16u;
  }
}

// Exclusive prefix sums over the groups, in place. Invocation t owns a contiguous run of groups.
@compute @workgroup_size(WG)
fn topk_scan(@builtin(local_invocation_index) lid: u32) {
  let per = (dims.groups + WG - 1u) / WG;
  let g0 = min(lid * per, dims.groups);
  let g1 = min(g0 + per, dims.groups);
  var gt = 0u;
  var eq = 0u;
  for (var g = g0; g < g1; g++) {
    gt += state[S_GROUPS + 2u * g];
    eq += state[S_GROUPS + 2u * g + 1u];
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
  for (var g = g0; g < g1; g++) {
    let cg = state[S_GROUPS + 2u * g];
    let ce = state[S_GROUPS + 2u * g + 1u];
    state[S_GROUPS + 2u * g] = run_gt;
    state[S_GROUPS + 2u * g + 1u] = run_eq;
    run_gt += cg;
    run_eq += ce;
  }
}

// Writes group g's kept elements (in index order) to `kept`; returns a mask of which of this
// invocation's PER elements were kept. Must be called in uniform control flow (barriers).
fn compact_group(g: u32, lid: u32) -> u32 {
  let t = state[S_T];
  let ties = state[S_TIES];
  let i0 = first_element(g, lid);
  let mine = count_packed(i0, t);
  // Inclusive prefix sums of the packed counts over the workgroup (Hillis–Steele).
  wg_a[lid] = mine;
  workgroupBarrier();
  for (var off = 1u; off < WG; off <<= 1u) {
    var v = wg_a[lid];
    if (lid >= off) {
      v += wg_a[lid - off];
    }
    workgroupBarrier();
    wg_a[lid] = v;
    workgroupBarrier();
  }
  let before = wg_a[lid] - mine;
  var gt = state[S_GROUPS + 2u * g] + (before & 0xffffu);
  var eq = state[S_GROUPS + 2u * g + 1u] + (before >> 16u);
  var mask = 0u;
  for (var j = 0u; j < PER; j++) {
    let i = i0 + j;
    if (i < dims.n) {
      let bits = x[i];
      let a = bits & ABS;
      if (a > t || (a == t && eq < ties)) {
        let pos = gt + min(eq, ties);
        kept[pos] = i;
        kept[dims.k + pos] = bits;
        mask |= 1u << j;
      }
      if (a > t) {
        gt += 1u;
      } else if (a == t) {
        eq += 1u;
      }
    }
  }
  return mask;
}

@compute @workgroup_size(WG)
fn topk_compact(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let g = linear_group(wid, nwg);
  if (g >= dims.groups) {
    return;
  }
  _ = compact_group(g, lid);
}

@compute @workgroup_size(WG)
fn topk_compact_ef(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let g = linear_group(wid, nwg);
  if (g >= dims.groups) {
    return;
  }
  let mask = compact_group(g, lid);
  if (state[S_BAD] != 0u) {
    return;
  }
  let i0 = first_element(g, lid);
  for (var j = 0u; j < PER; j++) {
    let i = i0 + j;
    if (i < dims.n) {
      // d − d = +0 where kept; d − 0 = d (bit for bit, -0 included) where dropped.
      residual[i] = select(x[i], 0u, (mask & (1u << j)) != 0u);
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
