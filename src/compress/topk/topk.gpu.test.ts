// GPU top-k (src/compress/topk/topk.wgsl) against the CPU codec (src/compress/topk/topk.ts): the threshold,
// the count above it, the kept indices, the kept value bits and the payload bytes must be identical.
// Inputs are fresh random bit patterns (never zero): both signs, magnitudes from subnormal to 2^63,
// a tenth drawn from a pool of 6 magnitudes, and extra copies of the threshold magnitude so that many
// values tie at the threshold and only the lowest-indexed of them are kept. Output and scratch buffers
// are NaN-poisoned so an unwritten entry fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../util/rng';
import { createStorage, readBuffer, upload } from '../../gpu/buffers';
import { testDevice, poisoned, run } from '../../gpu/gpu.test-helper';
import { topkCodec, topkIndices, topkPack, topkThreshold } from './topk';
import { f16Codec } from '../plain/plain';
import { randomkCodec } from '../randomk/randomk';
import { ErrorFeedback } from '../error-feedback';
import { blockQuantCodec } from '../quant/quant';
import {
  readTopkKept,
  readTopkState,
  topkErrorFeedbackLaunches,
  topkKeptBytes,
  topkLaunches,
  topkPayload,
  topkPrepareLaunch,
  topkScatterLaunch,
  probeEfMulAddLaunch,
  EF_FLAG_NONE,
  EF_FLAGS_BYTES,
  topkScratchBytes,
  topkSegmentLength,
  type TopkKept,
  type TopkState,
} from './topk.gpu';

const ABS = 0x7fffffff;
const SIZES = [1, 7, 257, 1031, 65537];
const FRACTIONS = [1e-9, 0.003, 0.25, 0.9, 1]; // k = 1, small, a quarter, most, k = n

const bitsOf = (x: Float32Array) => new Uint32Array(x.buffer, x.byteOffset, x.length);

/** A random nonzero f32 magnitude (as bits): 15% subnormal, else exponent 2^-126 .. 2^(maxExp − 127). */
function magnitude(rng: Rng, maxExp: number): number {
  if (rng.next() < 0.15) return 1 + rng.int(0x7fffff);
  return ((1 + rng.int(maxExp)) << 23) | rng.int(0x800000);
}

/**
 * Fresh random values (see the file comment); when k < n, about n/8 values below the k-th largest
 * magnitude are replaced by ± that magnitude, so the threshold is shared by many values.
 */
function update(n: number, k: number, rng: Rng, maxExp = 190): Float32Array {
  const bits = new Uint32Array(n);
  const pool = Array.from({ length: 6 }, () => magnitude(rng, maxExp));
  const sign = () => (rng.next() < 0.5 ? 0x80000000 : 0);
  for (let i = 0; i < n; i++) bits[i] = ((rng.next() < 0.1 ? pool[rng.int(6)] : magnitude(rng, maxExp)) | sign()) >>> 0;
  const x = new Float32Array(bits.buffer);
  if (k < n) {
    const { threshold } = topkThreshold(x, k);
    for (let c = 0; c < Math.ceil(n / 8); c++) {
      const i = rng.int(n);
      if ((bits[i] & ABS) < threshold) bits[i] = (threshold | sign()) >>> 0;
    }
  }
  return x;
}

interface GpuTopk {
  kept: TopkKept;
  state: TopkState;
}

async function gpuTopk(device: GPUDevice, x: Float32Array, k: number, maxWorkgroupsPerDim?: number): Promise<GpuTopk> {
  const n = x.length;
  const X = createStorage(device, x);
  const scratch = poisoned(device, topkScratchBytes(n) / 4, 'topk-scratch');
  const kept = poisoned(device, topkKeptBytes(k) / 4, 'topk-kept');
  await run(device, topkLaunches(device, n, k, { x: X, scratch, kept }, { maxWorkgroupsPerDim }));
  const out = { kept: await readTopkKept(device, kept, k), state: await readTopkState(device, scratch) };
  [X, scratch, kept].forEach((b) => b.destroy());
  return out;
}

/** Asserts the GPU result equals the CPU's selection for x; returns #{|x| = T} (for coverage). */
function assertSameSelection(what: string, x: Float32Array, k: number, g: GpuTopk): number {
  const cpu = topkThreshold(x, k);
  assert.equal(g.state.threshold, cpu.threshold, `${what}: threshold bits`);
  assert.equal(g.state.above, cpu.above, `${what}: values above the threshold`);
  assert.equal(g.state.ties, k - cpu.above, `${what}: ties kept`);
  assert.equal(g.state.bad, false, `${what}: no NaN/Inf flagged`);
  const idx = topkIndices(x, k);
  assert.deepEqual(g.kept.indices, idx, `${what}: kept indices`);
  const xb = bitsOf(x);
  assert.deepEqual(
    bitsOf(g.kept.values),
    Uint32Array.from(idx, (i) => xb[i]),
    `${what}: kept value bits`,
  );
  let eq = 0;
  for (let i = 0; i < x.length; i++) if ((xb[i] & ABS) === cpu.threshold) eq++;
  return eq;
}

test('GPU top-k selects the CPU kept set and gives the CPU payload bytes, n ∈ {1, 7, 257, 1031, 65537}, k from 1 to n', async () => {
  const device = await testDevice();
  let partialTies = 0;
  let subnormalThreshold = 0;
  for (const n of SIZES) {
    const seen = new Set<number>();
    for (const fraction of FRACTIONS) {
      const codec = topkCodec({ fraction });
      const k = codec.keep(n);
      if (seen.has(k)) continue;
      seen.add(k);
      const what = `n=${n} k=${k}`;
      const x = update(n, k, new Rng(1000 * n + k));
      const g = await gpuTopk(device, x, k);
      const eq = assertSameSelection(what, x, k, g);
      if (g.state.ties < eq) partialTies++;
      if (g.state.threshold < 0x800000) subnormalThreshold++;
      assert.deepEqual(topkPayload(codec, n, g.kept), codec.encode(x), `${what}: payload bytes`);
    }
  }
  assert.ok(partialTies >= 6, `cases where only some of the values tied at the threshold were kept: ${partialTies}`);
  assert.ok(subnormalThreshold >= 1, 'some case had a subnormal threshold');
});

test('GPU top-k: all-equal magnitudes, values differing only in the last mantissa bits, subnormals only', async () => {
  const device = await testDevice();
  const rng = new Rng(7);
  const n = 1031;
  const cases: [string, Float32Array][] = [];
  // Every |x| equal, both signs: the kept set is the first k indices.
  cases.push(['all equal', Float32Array.from({ length: n }, () => (rng.next() < 0.5 ? -0.75 : 0.75))]);
  // Shared bits 30..10, so the third histogram pass decides (and ties in the last 10 bits).
  const close = new Uint32Array(n);
  for (let i = 0; i < n; i++) close[i] = (0x3f8abc00 | rng.int(64) | (rng.next() < 0.5 ? 0x80000000 : 0)) >>> 0;
  cases.push(['last bits', new Float32Array(close.buffer)]);
  // Subnormals only (the selection never touches floats, so none is flushed).
  const sub = new Uint32Array(n);
  for (let i = 0; i < n; i++) sub[i] = ((1 + rng.int(300)) | (rng.next() < 0.5 ? 0x80000000 : 0)) >>> 0;
  cases.push(['subnormal', new Float32Array(sub.buffer)]);
  for (const [name, x] of cases) {
    for (const k of [1, 13, 500, n - 1]) {
      const g = await gpuTopk(device, x, k);
      assertSameSelection(`${name} k=${k}`, x, k, g);
      const codec = topkCodec({ fraction: k / n });
      assert.equal(codec.keep(n), k);
      assert.deepEqual(topkPayload(codec, n, g.kept), codec.encode(x), `${name} k=${k}: payload bytes`);
    }
  }
});

test('GPU top-k with segments longer than 32 and many per scan invocation, on a folded 2-D grid (forced small per-dimension limit)', async () => {
  const device = await testDevice();
  // Segments of 34 elements, 64707 of them (253 per scan invocation), in 253 workgroups on 20×13
  // (7 surplus); 256 histogram parts on 20×13 (4 surplus).
  const n = 2200001;
  assert.equal(topkSegmentLength(n), 34);
  const codec = topkCodec({ fraction: 0.01 });
  const k = codec.keep(n);
  const x = update(n, k, new Rng(11));
  const g = await gpuTopk(device, x, k, 20);
  assertSameSelection('folded', x, k, g);
  assert.deepEqual(topkPayload(codec, n, g.kept), codec.encode(x), 'payload bytes');
});

test('GPU top-k with an f16 inner codec: the CPU step serialises the GPU kept list to the CPU bytes', async () => {
  const device = await testDevice();
  const n = 1031;
  const codec = topkCodec({ fraction: 0.05, values: f16Codec });
  const k = codec.keep(n);
  const x = update(n, k, new Rng(12), 140); // below 2^13, inside f16's range
  const g = await gpuTopk(device, x, k);
  assert.deepEqual(topkPayload(codec, n, g.kept), codec.encode(x));
});

test('GPU top-k flags NaN/Inf; the payload step refuses them like the CPU encoder', async () => {
  const device = await testDevice();
  const n = 257;
  const codec = topkCodec({ fraction: 0.1 });
  const x = update(n, codec.keep(n), new Rng(13));
  x[200] = NaN;
  x[5] = -Infinity;
  const g = await gpuTopk(device, x, codec.keep(n));
  assert.equal(g.state.bad, true);
  assert.ok(g.kept.indices.includes(200) && g.kept.indices.includes(5), 'non-finite values are always kept');
  assert.throws(() => codec.encode(x), RangeError);
  assert.throws(() => topkPayload(codec, n, g.kept), /only finite values can be encoded/);
});

test('topkPayload and topkPack check what they are given', () => {
  const kept = { indices: new Uint32Array([1, 3]), values: new Float32Array([1, 2]) };
  assert.throws(() => topkPayload(randomkCodec({ fraction: 0.5 }), 4, kept), /needs a top-k codec/);
  assert.throws(() => topkPayload(topkCodec({ fraction: 0.25 }), 4, kept), /expected k = 1/);
  assert.throws(
    () => topkPack(new Uint32Array([3, 1]), new Float32Array(2), 4, topkCodec({ fraction: 1 }).values),
    /increase strictly/,
  );
  assert.throws(
    () => topkPack(new Uint32Array([1, 4]), new Float32Array(2), 4, topkCodec({ fraction: 1 }).values),
    /below n = 4/,
  );
});

/** f32 bit patterns for the add test: random, subnormal, near-cancelling and huge values. */
function addOperands(n: number, rng: Rng): [Uint32Array, Uint32Array, Uint32Array] {
  const ops = [new Uint32Array(n), new Uint32Array(n), new Uint32Array(n)];
  const sign = () => (rng.next() < 0.5 ? 0x80000000 : 0);
  for (let i = 0; i < n; i++) {
    const kind = i % 5;
    for (const o of ops) {
      let m: number;
      if (kind === 0)
        m = rng.int(0x7f800000); // any finite magnitude
      else if (kind === 1)
        m = rng.int(0x1000000); // subnormals and the lowest normals
      else if (kind === 2)
        m = (((110 + rng.int(20)) << 23) | rng.int(0x800000)) >>> 0; // close exponents: carries, rounding
      else if (kind === 3)
        m = ((254 << 23) | rng.int(0x800000)) >>> 0; // near the top: overflow to ±Inf
      else m = (0x3f800000 + rng.int(8)) >>> 0; // 1 + a few ulps: cancellation
      o[i] = (m | sign()) >>> 0;
    }
    if (kind === 4 && rng.next() < 0.3) ops[1][i] = ops[0][i]; // base − local = exactly 0
  }
  return ops as [Uint32Array, Uint32Array, Uint32Array];
}

test('GPU error-feedback prepare: (base − local) + residual is the IEEE f32 result bit for bit, subnormals included', async () => {
  const device = await testDevice();
  const n = 40000;
  const [b, l, r] = addOperands(n, new Rng(14));
  const f = (u: Uint32Array) => new Float32Array(u.buffer);
  const want = bitsOf(Float32Array.from(f(b), (v, i) => Math.fround(v - f(l)[i]) + f(r)[i]));
  const base = createStorage(device, b);
  const local = createStorage(device, l);
  const residual = createStorage(device, r);
  const d = poisoned(device, n);
  await run(device, [topkPrepareLaunch(device, n, { base, local, residual, d })]);
  const got = new Uint32Array(await readBuffer(device, d, 4 * n));
  let nonFinite = 0;
  let subnormal = 0;
  for (let i = 0; i < n; i++) {
    if ((want[i] & ABS) !== 0 && (want[i] & ABS) < 0x800000) subnormal++;
    if ((want[i] & ABS) >= 0x7f800000) {
      // An overflow in the first add gives ±Inf on both; the GPU's second add then says NaN.
      assert.ok((got[i] & ABS) >= 0x7f800000, `element ${i}: CPU non-finite, GPU 0x${got[i].toString(16)}`);
      nonFinite++;
    } else if (got[i] !== want[i]) {
      assert.fail(
        `element ${i}: (0x${b[i].toString(16)} − 0x${l[i].toString(16)}) + ` +
          `0x${r[i].toString(16)}: GPU 0x${got[i].toString(16)}, CPU 0x${want[i].toString(16)}`,
      );
    }
  }
  assert.ok(nonFinite > 0 && nonFinite < n / 5, `non-finite results: ${nonFinite}`);
  assert.ok(subnormal > n / 20, `subnormal results: ${subnormal}`);
  [base, local, residual, d].forEach((x) => x.destroy());
});

test('GPU top-k with error feedback follows the CPU ErrorFeedback over 3 rounds (bytes and residual bits)', async () => {
  const device = await testDevice();
  for (const [n, fraction] of [
    [1031, 0.05],
    [65537, 0.01],
  ] as const) {
    const codec = topkCodec({ fraction });
    const k = codec.keep(n);
    const rng = new Rng(15 + n);
    const base = createStorage(device, 4 * n);
    const local = createStorage(device, 4 * n);
    const residual = createStorage(device, new Float32Array(n));
    const d = poisoned(device, n, 'topk-d');
    const scratch = poisoned(device, topkScratchBytes(n) / 4, 'topk-scratch');
    const kept = createStorage(device, topkKeptBytes(k));
    const launches = topkErrorFeedbackLaunches(device, n, k, { base, local, residual, d, scratch, kept });
    const ef = new ErrorFeedback(codec, n);
    for (let round = 0; round < 3; round++) {
      const what = `n=${n} round ${round}`;
      const b = update(n, k, rng, 150);
      const lb = bitsOf(Float32Array.from(b)); // local = base with a fifth of the values replaced
      for (let i = 0; i < n; i++)
        if (rng.next() < 0.2) lb[i] = (magnitude(rng, 150) | (rng.next() < 0.5 ? 0x80000000 : 0)) >>> 0;
      const l = new Float32Array(lb.buffer);
      upload(device, base, b);
      upload(device, local, l);
      upload(device, kept, new Float32Array(2 * k).fill(NaN));
      await run(device, launches, true); // reused next round
      const g = await readTopkKept(device, kept, k);
      const delta = Float32Array.from(b, (v, i) => v - l[i]);
      const cpu = ef.encode(delta);
      assert.deepEqual(topkPayload(codec, n, g), cpu, `${what}: payload bytes`);
      const r = new Uint32Array(await readBuffer(device, residual, 4 * n));
      assert.deepEqual(r, bitsOf(ef.residual), `${what}: residual bits`);
    }
    // A NaN in the update: the payload step throws and the residual is left as it was.
    const before = new Uint32Array(await readBuffer(device, residual, 4 * n));
    const b = update(n, k, rng, 150);
    b[n >> 1] = NaN;
    upload(device, base, b);
    await run(device, launches);
    assert.equal((await readTopkState(device, scratch)).bad, true);
    const bad = await readTopkKept(device, kept, k);
    assert.throws(() => topkPayload(codec, n, bad), /only finite values/);
    assert.deepEqual(
      new Uint32Array(await readBuffer(device, residual, 4 * n)),
      before,
      `n=${n}: residual unchanged after NaN`,
    );
    [base, local, residual, d, scratch, kept].forEach((x) => x.destroy());
  }
});

// ---- error-feedback decay: d = (base − local) + β·residual as JavaScript computes it -------------------

const f32Of = (bits: number) => new Float32Array(new Uint32Array([bits]).buffer)[0];
const bitsOfF32 = (v: number) => new Uint32Array(new Float32Array([v]).buffer)[0];
/** fround(d + β·r) in JavaScript (f64 product and sum): ErrorFeedback's d for residual r. */
const jsMulAdd = (d: number, r: number, beta: number) => bitsOfF32(f32Of(d) + beta * f32Of(r));

/**
 * (d bits, r bits, β) cases: random patterns and β; products that tie at 53 bits (r with 1–4
 * significant bits, β = 2/3 · 1.5 = 1 − 2^-54 ties up to 2^53); sums whose f64 rounding lands exactly
 * on an f32 midpoint (β·r ≈ (2m+1)·ulp(d)/2, β chosen per case, and β·(1 ± 2^-53)); cancellation
 * (d = −fround(β·r) ± 1 ulp); subnormal d and r; overflow; signed zeros; one addend 2^-20..2^-60 of the
 * other (around the f64 guard bits).
 */
function mulAddCases(count: number, rng: Rng): { d: number; r: number; beta: number }[] {
  const betas = [0, 1, 0.9, 0.5, 0.99, 2 / 3, 1 / 3, 0.1, 2 ** -800, 1 - 2 ** -53];
  const sign = () => (rng.next() < 0.5 ? 0x80000000 : 0);
  const any = (maxExp = 254) =>
    ((rng.next() < 0.1 ? 1 + rng.int(0x7fffff) : ((1 + rng.int(maxExp)) << 23) | rng.int(0x800000)) | sign()) >>> 0;
  const out: { d: number; r: number; beta: number }[] = [];
  for (let kind = 0; out.length < count; kind = (kind + 1) % 8) {
    const beta = rng.next() < 0.5 ? betas[rng.int(betas.length)] : rng.next();
    let d = any();
    let r = any();
    switch (kind) {
      case 1: {
        const dv = Math.abs(f32Of(any(200)));
        d = bitsOfF32(dv * (rng.next() < 0.5 ? -1 : 1));
        const ulp = 2 ** (Math.floor(Math.log2(dv)) - 23);
        // β·r a midpoint offset (2m+1)·ulp/2, or that ± (1 + 2^-10)·ulp64/2: the f64 sum then ties at
        // 53 bits but for bits of β·r below the guard bits (only a sticky bit rounds it right).
        const p0 = ((2 * rng.int(4) + 1) / 2) * ulp + [0, 1, -1][rng.int(3)] * ulp * 2 ** -30 * (1 + 2 ** -10);
        r = bitsOfF32(p0 * (1 + 3 * rng.next()) * (rng.next() < 0.5 ? -1 : 1));
        const b = Math.abs(p0 / f32Of(r));
        for (const bb of [b, b * (1 + 2 ** -52), b * (1 - 2 ** -53)])
          if (bb >= 2 ** -800 && bb <= 1) out.push({ d, r, beta: bb });
        continue;
      }
      case 2:
        r = bitsOfF32(
          (1 + rng.int(8)) * (rng.next() < 0.5 ? 1.5 : 1) * 2 ** (rng.int(60) - 30) * (rng.next() < 0.5 ? -1 : 1),
        );
        break;
      case 3:
        d = (bitsOfF32(-Math.fround(beta * f32Of(r))) + rng.int(3) - 1) >>> 0;
        if ((d & ABS) >= 0x7f800000) continue;
        break;
      case 4:
        d = (rng.int(0x800000) | sign()) >>> 0;
        r = (rng.int(0x1000000) | sign()) >>> 0;
        break;
      case 5:
        d = (((247 + rng.int(8)) << 23) | rng.int(0x800000) | sign()) >>> 0;
        r = (((247 + rng.int(8)) << 23) | rng.int(0x800000) | sign()) >>> 0;
        break;
      case 6: // one addend far below the other's f64 ulp, or around it (guard and sticky bits)
        if (rng.next() < 0.5) r = bitsOfF32(f32Of(d) * 2 ** -(20 + rng.int(40)) * (4 * rng.next() - 2));
        else d = bitsOfF32(beta * f32Of(r) * 2 ** -(46 + rng.int(12)) * (4 * rng.next() - 2));
        break;
      case 7:
        if (rng.next() < 0.5) d = sign();
        else r = sign();
        break;
    }
    out.push({ d, r, beta });
  }
  return out.slice(0, count);
}

test('GPU error-feedback decay: fround(d + β·r) equals JavaScript f64 arithmetic bit for bit (ties, cancellation, subnormals, overflow)', async () => {
  const device = await testDevice();
  const n = 100000;
  const cases = mulAddCases(n, new Rng(16));
  const words = new Uint32Array(4 * n);
  cases.forEach((c, i) => {
    const w = new Uint32Array(new Float64Array([c.beta]).buffer);
    words.set([c.d, c.r, w[1], w[0]], 4 * i);
  });
  const input = createStorage(device, words);
  const out = poisoned(device, n);
  await run(device, [probeEfMulAddLaunch(device, n, { cases: input, out })]);
  const got = new Uint32Array(await readBuffer(device, out, 4 * n));
  let naiveDiffers = 0;
  let subnormal = 0;
  let nonFinite = 0;
  cases.forEach((c, i) => {
    const want = jsMulAdd(c.d, c.r, c.beta);
    if (got[i] !== want) {
      assert.fail(
        `case ${i}: 0x${c.d.toString(16)} + ${c.beta} · 0x${c.r.toString(16)}: ` +
          `GPU 0x${got[i].toString(16)}, JavaScript 0x${want.toString(16)}`,
      );
    }
    if (want !== bitsOfF32(f32Of(c.d) + Math.fround(Math.fround(c.beta) * f32Of(c.r)))) naiveDiffers++;
    if ((want & ABS) !== 0 && (want & ABS) < 0x800000) subnormal++;
    if ((want & ABS) >= 0x7f800000) nonFinite++;
  });
  // The cases must tell f64 from f32 arithmetic, and reach subnormal and overflowing results.
  assert.ok(naiveDiffers > n / 20, `cases where f32 arithmetic differs: ${naiveDiffers}`);
  assert.ok(subnormal > n / 50 && nonFinite > 50, `subnormal ${subnormal}, non-finite ${nonFinite}`);
  input.destroy();
  out.destroy();
});

test('GPU error-feedback prepare with decay 0.9: JavaScript d bit for bit; flags name the first non-finite Δ and d', async () => {
  const device = await testDevice();
  const n = 20000;
  const [b, l, r] = addOperands(n, new Rng(17));
  const f = (u: Uint32Array) => new Float32Array(u.buffer);
  const delta = Float32Array.from(f(b), (v, i) => v - f(l)[i]);
  const want = bitsOf(Float32Array.from(delta, (v, i) => v + 0.9 * f(r)[i]));
  const base = createStorage(device, b);
  const local = createStorage(device, l);
  const residual = createStorage(device, r);
  const flags = createStorage(device, new Uint32Array([EF_FLAG_NONE, EF_FLAG_NONE]));
  for (const withFlags of [false, true]) {
    const d = poisoned(device, n);
    await run(device, [
      topkPrepareLaunch(device, n, { base, local, residual, d, flags: withFlags ? flags : undefined }, { decay: 0.9 }),
    ]);
    const got = new Uint32Array(await readBuffer(device, d, 4 * n));
    for (let i = 0; i < n; i++) {
      const bad = (want[i] & ABS) >= 0x7f800000;
      if (bad ? (got[i] & ABS) < 0x7f800000 : got[i] !== want[i]) {
        assert.fail(
          `flags ${withFlags}, element ${i}: (0x${b[i].toString(16)} − 0x${l[i].toString(16)}) + 0.9 ` +
            `· 0x${r[i].toString(16)}: GPU 0x${got[i].toString(16)}, JavaScript 0x${want[i].toString(16)}`,
        );
      }
    }
    d.destroy();
  }
  const firstDelta = delta.findIndex((v) => !Number.isFinite(v));
  const firstD = want.findIndex((v) => (v & ABS) >= 0x7f800000);
  assert.ok(firstDelta >= 0 && firstD >= 0 && firstD <= firstDelta);
  assert.deepEqual([...new Uint32Array(await readBuffer(device, flags, EF_FLAGS_BYTES))], [firstDelta, firstD]);
  [base, local, residual, flags].forEach((x) => x.destroy());
});

test('GPU top-k error feedback with decay 0.9 and a q2 inner codec: host corrections scattered into the residual follow the CPU over 3 rounds, then a NaN round', async () => {
  const device = await testDevice();
  const n = 5003;
  const values = blockQuantCodec({ bits: 2, block: 64, rounding: 'nearest' });
  const codec = topkCodec({ fraction: 0.05, values });
  const k = codec.keep(n);
  const rng = new Rng(18);
  const base = createStorage(device, 4 * n);
  const local = createStorage(device, 4 * n);
  const residual = createStorage(device, new Float32Array(n));
  const d = poisoned(device, n, 'topk-d');
  const flags = createStorage(device, EF_FLAGS_BYTES);
  const scratch = poisoned(device, topkScratchBytes(n) / 4, 'topk-scratch');
  const kept = createStorage(device, topkKeptBytes(k));
  const launches = topkErrorFeedbackLaunches(
    device,
    n,
    k,
    { base, local, residual, d, scratch, kept, flags },
    { decay: 0.9 },
  );
  const scatter = topkScatterLaunch(device, n, k, { kept, residual });
  const ef = new ErrorFeedback(codec, n, 0.9);
  for (let round = 0; round < 4; round++) {
    const what = `round ${round}`;
    const b = update(n, k, rng, 150);
    const l = Float32Array.from(b, (v) => v * (1 - 0.1 * rng.next())); // Δ a few % of the weights
    if (round === 3) l[77] = NaN;
    upload(device, base, b);
    upload(device, local, l);
    upload(device, flags, new Uint32Array([EF_FLAG_NONE, EF_FLAG_NONE]));
    await run(device, launches, true);
    const before = ef.residual.slice();
    const delta = Float32Array.from(b, (v, i) => v - l[i]);
    const g = await readTopkKept(device, kept, k);
    const fl = new Uint32Array(await readBuffer(device, flags, EF_FLAGS_BYTES));
    if (round === 3) {
      assert.deepEqual([...fl], [77, 77], `${what}: flags`);
      assert.throws(() => ef.encode(delta), /only finite values/);
      assert.deepEqual(ef.residual, before);
    } else {
      assert.deepEqual([...fl], [EF_FLAG_NONE, EF_FLAG_NONE], `${what}: flags`);
      const cpu = ef.encode(delta);
      const payload = topkPayload(codec, n, g);
      assert.deepEqual(payload, cpu, `${what}: payload bytes`);
      const sent = values.decode(payload.subarray(payload.length - values.encodedBytes(k)), k);
      upload(
        device,
        kept,
        Float32Array.from(g.values, (v, j) => v - sent[j]),
        4 * k,
      );
      await run(device, [scatter], true);
    }
    const r = new Uint32Array(await readBuffer(device, residual, 4 * n));
    assert.deepEqual(r, bitsOf(ef.residual), `${what}: residual bits`);
  }
  [...launches, scatter].forEach((l) => l.uniform?.destroy());
  [base, local, residual, d, flags, scratch, kept].forEach((x) => x.destroy());
});
