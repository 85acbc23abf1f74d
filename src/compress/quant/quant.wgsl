// GPU encoders for the CPU codecs of src/compress/, producing the SAME BYTES (the CPU decoder is the
// coordinator's): Philox4x32-10 (prng.ts), blockwise 8/4/2-bit quantization with nearest or
// stochastic rounding (quant.ts, blockQuantCodec), its error-feedback variant (error-feedback.ts),
// and its decoder. Launch builders: src/compress/quant/quant.gpu.ts. The f16 value codec needs no kernel here:
// shaders/half.wgsl's f32_to_half writes plain.ts's f16 layout.
//
// Everything that decides a byte is integer arithmetic or a correctly rounded f32 operation on normal
// numbers, so no result depends on how a GPU divides or flushes subnormals:
//   - inputs are read as u32 bits; a block's largest |x| is the max of the |x| bit patterns (monotonic
//     for non-negative floats; NaN and Inf patterns exceed every finite one, marking the block bad);
//   - step = f32(maxabs · f32(1/L)) is one correctly rounded multiply of two normal f32s (0 when
//     maxabs < 2^-100, as on the CPU);
//   - t = f32(|x| / step), which WGSL would compute to within 2.5 ulp only, is computed correctly
//     rounded by a 24-bit integer long division of the significands (div_rn), as the CPU's
//     Math.fround(x / step) (f64 division then f32 rounding: double rounding through 53 bits is
//     innocuous for a quotient of two f32s);
//   - the rounding decisions are exact f32 comparisons (floor, fraction, ·2^24 are exact on normal t);
//     t below 2^-24 (including t that would be subnormal) is decided from its sign and whether it is 0.
// Uniform fields not used by an entry point are ignored by it.

struct Params {
  n: u32,          // elements (quantize/dequantize: values; probes: cases)
  blocks: u32,     // ceil(n / block): the f32 steps at the front of a quantized payload
  block: u32,      // values per step
  bits: u32,       // 8, 4 or 2
  levels: u32,     // L = 2^(bits-1) - 1
  inv_levels: u32, // bits of f32(1/L)
  stochastic: u32, // 1: stochastic rounding, 0: nearest
  words: u32,      // ceil(n·bits/32) code words after the steps
  seed: u32,       // codec context
  round: u32,
  stream: u32,
  purpose: u32,    // random_u32s probe: PRNG purpose
  start: u32,      // random_u32s probe: first element index
  k: u32,          // unused (the removed random-k entries' fields; the layout is kept)
  half_bits: u32,  // unused
  _pad: u32,
}

@group(0) @binding(0) var<uniform> prm: Params;
// Input values as f32 bits (quantize), or probe cases.
@group(0) @binding(1) var<storage, read> src: array<u32>;
// Encoded payload (quantize: steps then code words), or probe results.
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;
// Error feedback: d = delta + residual is encoded, then residual <- d - decode(encoded).
@group(0) @binding(3) var<storage, read> delta: array<f32>;
@group(0) @binding(4) var<storage, read_write> residual: array<f32>;
// Dequantize: payload in, f32 bits out.
@group(0) @binding(5) var<storage, read> payload: array<u32>;
@group(0) @binding(6) var<storage, read_write> y: array<u32>;
// dequant_ef: word 1 is the first element whose d is NaN or ±Inf (0xffffffff: none), as
// topk.wgsl's ef_prepare writes it.
@group(0) @binding(8) var<storage, read> ef_flags: array<u32>;

const WG: u32 = 64u;
const ABS: u32 = 0x7fffffffu;
const F32_INF: u32 = 0x7f800000u;
const F32_NAN: u32 = 0x7fc00000u;
const F32_NEG_ZERO: u32 = 0x80000000u;
const TINY: u32 = 0x0d800000u; // bits of 2^-100
const TWO24: f32 = 16777216.0;

const PURPOSE_STOCHASTIC_ROUNDING: u32 = 1u;

// ---------------------------------------------------------------------------------------------------
// Philox4x32-10, line for line prng.ts.

const PHILOX_M0: u32 = 0xd2511f53u;
const PHILOX_M1: u32 = 0xcd9e8d57u;
const PHILOX_W0: u32 = 0x9e3779b9u;
const PHILOX_W1: u32 = 0xbb67ae85u;

// High 32 bits of a·b from 16-bit halves (every partial sum stays below 2^32).
fn mulhi32(a: u32, b: u32) -> u32 {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let b0 = b & 0xffffu;
  let b1 = b >> 16u;
  let lo = a0 * b0;
  let m1 = a1 * b0;
  let m2 = a0 * b1;
  let carry = ((lo >> 16u) + (m1 & 0xffffu) + (m2 & 0xffffu)) >> 16u;
  return a1 * b1 + (m1 >> 16u) + (m2 >> 16u) + carry;
}

fn philox4x32_10(ctr: vec4u, key: vec2u) -> vec4u {
  var c = ctr;
  var k = key;
  for (var r = 0u; r < 10u; r++) {
    if (r > 0u) {
      k += vec2u(PHILOX_W0, PHILOX_W1);
    }
    let hi0 = mulhi32(PHILOX_M0, c.x);
    let lo0 = PHILOX_M0 * c.x;
    let hi1 = mulhi32(PHILOX_M1, c.z);
    let lo1 = PHILOX_M1 * c.z;
    c = vec4u(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
  }
  return c;
}

// The Philox block holding elements 4b..4b+3 of (context, purpose): randomU32(ctx, purpose, i) is
// component i & 3 of random_block(purpose, i >> 2).
fn random_block(purpose: u32, b: u32) -> vec4u {
  return philox4x32_10(vec4u(b, prm.round, prm.stream, purpose), vec2u(prm.seed, 0u));
}

// ---------------------------------------------------------------------------------------------------
// Blockwise quantization (quant/quant.ts).

// The block step from the max |x| bit pattern: NaN bits when the block holds NaN or Inf (the host turns
// that into an error), 0 below 2^-100, else the correctly rounded f32(maxabs · f32(1/L)).
fn step_bits(max_abs_bits: u32) -> u32 {
  if (max_abs_bits >= F32_INF) {
    return F32_NAN;
  }
  if (max_abs_bits < TINY) {
    return 0u;
  }
  return bitcast<u32>(bitcast<f32>(max_abs_bits) * bitcast<f32>(prm.inv_levels));
}

const Q_ZERO: u32 = 0u;   // f32(|x|/s) == 0
const Q_TINY: u32 = 1u;   // 0 < f32(|x|/s) < 2^-24 (subnormal, or normal but below every rounding threshold)
const Q_NORMAL: u32 = 2u; // bits hold f32(|x|/s), a normal f32 in [2^-126, 256]
const Q_BIG: u32 = 3u;    // |x|/s >= 256: every rounding clamps to ±L

struct Quot {
  bits: u32,
  kind: u32,
}

// f32(|x| / s) rounded to nearest even, from bit patterns: ax = |x| (finite, may be subnormal),
// sb = s (a positive normal f32). Long division of the 24-bit significands.
fn div_rn(ax: u32, sb: u32) -> Quot {
  if (ax == 0u) {
    return Quot(0u, Q_ZERO);
  }
  var mx: u32;
  var ex: i32; // |x| = mx · 2^(ex - 23), mx in [2^23, 2^24)
  let bx = ax >> 23u;
  if (bx == 0u) {
    let lead = firstLeadingBit(ax);
    mx = ax << (23u - lead);
    ex = i32(lead) - 149;
  } else {
    mx = (ax & 0x7fffffu) | 0x800000u;
    ex = i32(bx) - 127;
  }
  let ms = (sb & 0x7fffffu) | 0x800000u;
  let es = i32(sb >> 23u) - 127;
  // |x|/s = (num/ms) · 2^e with num/ms in [1, 2).
  var num = mx;
  var e = ex - es;
  if (mx < ms) {
    num = mx << 1u;
    e -= 1;
  }
  if (e >= 8) {
    return Quot(0u, Q_BIG);
  }
  if (e < -126) {
    // Below 2^-126 (the CPU gets a subnormal or 0). It is 0 exactly when |x|/s <= 2^-150 (2^-150 is a
    // tie between 0 and 2^-149 and goes to the even 0).
    if (e > -150 || (e == -150 && num != ms)) {
      return Quot(0u, Q_TINY);
    }
    return Quot(0u, Q_ZERO);
  }
  var rem = num; // < 2·ms < 2^25 throughout
  var q = 0u;
  for (var k = 0u; k < 24u; k++) {
    q <<= 1u;
    if (rem >= ms) {
      rem -= ms;
      q |= 1u;
    }
    rem <<= 1u;
  }
  // q = floor(num·2^23/ms) in [2^23, 2^24); rem = 2·(num·2^23 − q·ms): compare with ms for the half.
  let up = rem > ms || (rem == ms && (q & 1u) == 1u);
  // A carry out of the significand (q + 1 = 2^24) correctly bumps the exponent.
  return Quot((u32(e + 127) << 23u) + (q - 0x800000u) + select(0u, 1u, up), Q_NORMAL);
}

// The code of x (bits xb) in a block with step bits sb: quantizeNearest / quantizeStochastic of
// quant.ts, with u the element's random u32 (stochastic only). 0 for a step of 0 or a bad block.
fn quant_code(xb: u32, sb: u32, stochastic: bool, u: u32, levels: u32) -> i32 {
  if (sb == 0u || sb >= F32_INF) {
    return 0;
  }
  let neg = (xb >> 31u) != 0u;
  let qt = div_rn(xb & ABS, sb);
  let L = i32(levels);
  if (qt.kind == Q_BIG) {
    return select(L, -L, neg);
  }
  if (qt.kind != Q_NORMAL) {
    // t = ±a with 0 <= a < 2^-24. Nearest: 0. Stochastic, t > 0: floor 0, up iff u24 < a·2^24 < 1,
    // i.e. u24 = 0. t < 0: floor −1, up iff u24 < (1 − a)·2^24, always true (u24 <= 2^24 − 1): 0.
    // t = ±0: 0.
    return select(0, 1, stochastic && qt.kind == Q_TINY && !neg && (u >> 8u) == 0u);
  }
  let a = bitcast<f32>(qt.bits);
  let fl = floor(a);
  let g = a - fl; // exact
  var q: i32;
  if (!stochastic) {
    // Round half away from zero of t = ±a.
    q = i32(fl) + select(0, 1, g >= 0.5);
    if (neg) {
      q = -q;
    }
  } else {
    let u24 = f32(u >> 8u); // exact
    if (!neg) {
      // floor(t) + (u24 < frac·2^24)
      q = i32(fl) + select(0, 1, u24 < g * TWO24);
    } else if (g == 0.0) {
      q = -i32(fl); // t an integer: frac 0, never up
    } else {
      // floor(t) = −fl − 1, frac = 1 − g: u24 < (1 − g)·2^24  ⇔  g·2^24 < 2^24 − u24 (both exact).
      q = -i32(fl) - 1 + select(0, 1, g * TWO24 < TWO24 - u24);
    }
  }
  return clamp(q, -L, L);
}

fn block_of(wid: vec3u, nwg: vec3u) -> u32 {
  return wid.y * nwg.x + wid.x;
}

var<workgroup> red: array<u32, 64>;

fn reduce_max(v: u32, lid: u32) -> u32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      red[lid] = max(red[lid], red[lid + s]);
    }
    workgroupBarrier();
  }
  return red[0];
}

// Pass 1: one workgroup per block writes the block's step to dst[block].
@compute @workgroup_size(WG)
fn quant_steps(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let b = block_of(wid, nwg);
  if (b >= prm.blocks) {
    return;
  }
  let lo = b * prm.block;
  let hi = min(prm.n, lo + prm.block);
  var m = 0u;
  for (var i = lo + lid; i < hi; i += WG) {
    m = max(m, src[i] & ABS);
  }
  let mx = reduce_max(m, lid);
  if (lid == 0u) {
    dst[b] = step_bits(mx);
  }
}

// Error-feedback pass 1: as quant_steps on d = delta + residual (an f32 add, as the CPU's Float32Array).
@compute @workgroup_size(WG)
fn quant_steps_ef(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let b = block_of(wid, nwg);
  if (b >= prm.blocks) {
    return;
  }
  let lo = b * prm.block;
  let hi = min(prm.n, lo + prm.block);
  var m = 0u;
  for (var i = lo + lid; i < hi; i += WG) {
    m = max(m, bitcast<u32>(delta[i] + residual[i]) & ABS);
  }
  let mx = reduce_max(m, lid);
  if (lid == 0u) {
    dst[b] = step_bits(mx);
  }
}

// Codes of the (up to 16) elements of code word w, given their bits; returns the packed word.
// Reads the steps pass 1 wrote to dst[0..blocks).
fn encode_word(w: u32, vals: array<u32, 16>, codes: ptr<function, array<i32, 16>>) -> u32 {
  let bits = prm.bits;
  let per = 32u / bits;
  let mask = (1u << bits) - 1u;
  let stochastic = prm.stochastic != 0u;
  var v = vals;
  var rnd = vec4u(0u);
  var word = 0u;
  for (var j = 0u; j < per; j++) {
    let i = w * per + j;
    if (i >= prm.n) {
      break;
    }
    // per is a multiple of 4 and words start at multiples of per, so each Philox block serves
    // elements 4b..4b+3 of this word.
    if (stochastic && (j & 3u) == 0u) {
      rnd = random_block(PURPOSE_STOCHASTIC_ROUNDING, i >> 2u);
    }
    let q = quant_code(v[j], dst[i / prm.block], stochastic, rnd[j & 3u], prm.levels);
    (*codes)[j] = q;
    word |= (bitcast<u32>(q) & mask) << (j * bits);
  }
  return word;
}

// Pass 2: one invocation per code word.
@compute @workgroup_size(WG)
fn quant_codes(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let w = block_of(wid, nwg) * WG + lid;
  if (w >= prm.words) {
    return;
  }
  let per = 32u / prm.bits;
  var vals: array<u32, 16>;
  for (var j = 0u; j < per; j++) {
    let i = w * per + j;
    if (i < prm.n) {
      vals[j] = src[i];
    }
  }
  var codes: array<i32, 16>;
  dst[prm.blocks + w] = encode_word(w, vals, &codes);
}

// Error-feedback pass 2: encodes d = delta + residual and sets residual <- d − f32(q)·step (d where
// the step is 0; 0 in a bad block, which the host reports as an error).
@compute @workgroup_size(WG)
fn quant_codes_ef(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let w = block_of(wid, nwg) * WG + lid;
  if (w >= prm.words) {
    return;
  }
  let per = 32u / prm.bits;
  var vals: array<u32, 16>;
  var d: array<f32, 16>;
  for (var j = 0u; j < per; j++) {
    let i = w * per + j;
    if (i < prm.n) {
      d[j] = delta[i] + residual[i];
      vals[j] = bitcast<u32>(d[j]);
    }
  }
  var codes: array<i32, 16>;
  dst[prm.blocks + w] = encode_word(w, vals, &codes);
  for (var j = 0u; j < per; j++) {
    let i = w * per + j;
    if (i >= prm.n) {
      break;
    }
    let sb = dst[i / prm.block];
    if (sb >= F32_INF) {
      residual[i] = 0.0;
    } else {
      residual[i] = d[j] - f32(codes[j]) * bitcast<f32>(sb);
    }
  }
}

// Decoder (blockQuantCodec.decode): y[i] = f32(code)·step, one invocation per code word. Where the CPU
// decoder throws (the code −2^(bits−1), a step that is negative, Inf or NaN) the value is NaN.
@compute @workgroup_size(WG)
fn dequant(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let w = block_of(wid, nwg) * WG + lid;
  if (w >= prm.words) {
    return;
  }
  let bits = prm.bits;
  let per = 32u / bits;
  let mask = (1u << bits) - 1u;
  let half = 1u << (bits - 1u);
  let word = payload[prm.blocks + w];
  for (var j = 0u; j < per; j++) {
    let i = w * per + j;
    if (i >= prm.n) {
      break;
    }
    let c = (word >> (j * bits)) & mask;
    let sb = payload[i / prm.block];
    let bad = c == half || (sb >= F32_INF && sb != F32_NEG_ZERO);
    y[i] = select(bitcast<u32>(f32(code_of(c)) * bitcast<f32>(sb)), F32_NAN, bad);
  }
}

// The signed code of a bits-wide field c (sign-extended).
fn code_of(c: u32) -> i32 {
  return bitcast<i32>(c << (32u - prm.bits)) >> (32u - prm.bits);
}

// Error-feedback residual of an encoded payload: residual ← d − f32(q)·step for d (f32 bits in src)
// and the payload an encoder wrote from it, as bits into y (the residual buffer), one invocation per
// code word. Code 0 copies d's bits (d − 0 = d, −0 and subnormals included); otherwise one f32
// multiply and one subtract (exact unless d or the result is subnormal, where a GPU may flush).
// Does nothing when ef_flags[1] names a non-finite d, so a refused update leaves the residual as it was.
@compute @workgroup_size(WG)
fn dequant_ef(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let w = block_of(wid, nwg) * WG + lid;
  if (w >= prm.words || ef_flags[1] != 0xffffffffu) {
    return;
  }
  let per = 32u / prm.bits;
  let mask = (1u << prm.bits) - 1u;
  let word = payload[prm.blocks + w];
  for (var j = 0u; j < per; j++) {
    let i = w * per + j;
    if (i >= prm.n) {
      break;
    }
    let q = code_of((word >> (j * prm.bits)) & mask);
    if (q == 0) {
      y[i] = src[i];
    } else {
      y[i] = bitcast<u32>(bitcast<f32>(src[i]) - f32(q) * bitcast<f32>(payload[i / prm.block]));
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Test probes (quant.gpu.test.ts): the helpers above on inputs the tests choose.

// Case c: src[6c..6c+6) = (c0, c1, c2, c3, k0, k1) → dst[4c..4c+4) = Philox4x32-10 output.
@compute @workgroup_size(WG)
fn probe_philox(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let c = block_of(wid, nwg) * WG + lid;
  if (c >= prm.n) {
    return;
  }
  let o = philox4x32_10(vec4u(src[6u * c], src[6u * c + 1u], src[6u * c + 2u], src[6u * c + 3u]), vec2u(src[6u * c + 4u], src[6u * c + 5u]));
  for (var j = 0u; j < 4u; j++) {
    dst[4u * c + j] = o[j];
  }
}

// dst[j] = randomU32(ctx, purpose, start + j), j < n.
@compute @workgroup_size(WG)
fn probe_random_u32(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let j = block_of(wid, nwg) * WG + lid;
  if (j >= prm.n) {
    return;
  }
  let i = prm.start + j;
  dst[j] = random_block(prm.purpose, i >> 2u)[i & 3u];
}

// Case c: src[4c..4c+4) = (x bits, step bits, u, L) → dst[4c..4c+4) = (quotient bits, quotient kind,
// nearest code, stochastic code), codes as i32 bits.
@compute @workgroup_size(WG)
fn probe_quant(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let c = block_of(wid, nwg) * WG + lid;
  if (c >= prm.n) {
    return;
  }
  let xb = src[4u * c];
  let sb = src[4u * c + 1u];
  let u = src[4u * c + 2u];
  let levels = src[4u * c + 3u];
  let qt = div_rn(xb & ABS, sb);
  dst[4u * c] = qt.bits;
  dst[4u * c + 1u] = qt.kind;
  dst[4u * c + 2u] = bitcast<u32>(quant_code(xb, sb, false, u, levels));
  dst[4u * c + 3u] = bitcast<u32>(quant_code(xb, sb, true, u, levels));
}
