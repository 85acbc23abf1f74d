// GPU codec encoders (src/compress/quant/quant.wgsl) against the CPU codecs, bytes compared exactly:
//  - Philox4x32-10 and randomU32 bit for bit against prng.ts (random and extreme counters, keys,
//    contexts, element indices up to 2^32 − 1);
//  - the quotient f32(|x|/step) and both roundings, through a probe entry, against Math.fround(x/step),
//    quantizeNearest and quantizeStochastic on chosen inputs: exact ties k + ½, stochastic thresholds
//    u24 = frac·2^24 exactly (both signs), quotients below 2^-24 and subnormal, x subnormal, huge |x|/s;
//  - blockQuantCodec(8|4|2, nearest|stochastic).encode for n ∈ {1, 7, 257, 1031} (and 65537) with blocks
//    64, 7, 100 and 2048, magnitudes varying over 6 decades between blocks, payload poisoned with
//    0xDEADBEEF plus a spare word that must survive;
//  - error feedback over 3 rounds (bytes and residual exact), NaN/Inf blocks, a folded 2-D grid;
//  - the decoder against blockQuantCodec.decode, exactly.
// There are no tolerated differences: every decision is integer arithmetic or a correctly rounded f32
// operation on normal numbers on both sides (see the shader's header).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../util/rng';
import { createStorage, readBuffer, upload } from '../../gpu/buffers';
import { testDevice, run } from '../../gpu/gpu.test-helper';
import type { CodecContext } from '../codec';
import { fillRandomU32, philox4x32, randomU32, PURPOSE_STOCHASTIC_ROUNDING } from '../prng';
import {
  blockQuantCodec,
  quantizeNearest,
  quantizeStochastic,
  quantLevels,
  type QuantBits,
  type Rounding,
} from './quant';
import { ErrorFeedback } from '../error-feedback';
import {
  dequantizeBlockLaunch,
  dequantizeResidualLaunch,
  probePhiloxLaunch,
  probeQuantLaunch,
  probeRandomU32Launch,
  quantizeBlockErrorFeedbackLaunches,
  quantizeBlockLaunches,
  quantWords,
  setLaunchContext,
} from './quant.gpu';
import { f32Bits, f32FromBits } from '../../gpu/kernels/half';

const POISON = 0xdeadbeef;
const BITS: QuantBits[] = [8, 4, 2];
const ROUNDINGS: Rounding[] = ['nearest', 'stochastic'];
const CTX: CodecContext = { seed: 0xfffffffe, round: 2 ** 31 + 7, stream: 3 };

/** A storage buffer of `words` u32 filled with 0xDEADBEEF plus one spare word (checked by readWords). */
function poisonedWords(device: GPUDevice, words: number, label = 'poisoned'): GPUBuffer {
  return createStorage(device, new Uint32Array(words + 1).fill(POISON), label);
}

/** The first `words` words; asserts the spare word after them was not written. */
async function readWords(device: GPUDevice, buf: GPUBuffer, words: number, what: string): Promise<Uint32Array> {
  const all = new Uint32Array(await readBuffer(device, buf, 4 * (words + 1)));
  assert.equal(all[words], POISON, `${what}: the word after the output was written`);
  return all.subarray(0, words);
}

/** Fresh random values, never 0, magnitudes varying over 6 decades between stretches of `stretch`. */
function update(n: number, rng: Rng, stretch: number): Float32Array {
  const x = new Float32Array(n);
  for (let lo = 0; lo < n; lo += stretch) {
    const s = 10 ** (-6 * rng.next());
    for (let i = lo; i < Math.min(n, lo + stretch); i++) {
      let v = 0;
      while (v === 0) v = Math.fround((2 * rng.next() - 1) * s);
      x[i] = v;
    }
  }
  return x;
}

/** Asserts the GPU payload equals the CPU's byte for byte, naming the first differing step or code word. */
function assertSameBytes(what: string, gpu: Uint32Array, cpu: Uint8Array, nb: number): void {
  const want = new Uint32Array(cpu.buffer, cpu.byteOffset, cpu.byteLength / 4);
  assert.equal(gpu.length, want.length, `${what}: words`);
  for (let w = 0; w < want.length; w++) {
    if (gpu[w] !== want[w]) {
      const where = w < nb ? `step ${w}` : `code word ${w - nb}`;
      assert.fail(`${what}: ${where} is 0x${gpu[w].toString(16)}, the CPU wrote 0x${want[w].toString(16)}`);
    }
  }
}

async function gpuQuantize(
  device: GPUDevice,
  x: Float32Array,
  o: { bits: QuantBits; block: number; rounding: Rounding },
  ctx: CodecContext | undefined,
  maxWorkgroupsPerDim?: number,
): Promise<Uint32Array> {
  const n = x.length;
  const X = createStorage(device, x, 'x');
  const words = quantWords(n, o);
  const out = poisonedWords(device, words, 'payload');
  await run(device, quantizeBlockLaunches(device, n, o, ctx, { x: X, out }, { maxWorkgroupsPerDim }));
  const got = await readWords(device, out, words, `q${o.bits} ${o.rounding} n=${n}`);
  X.destroy();
  out.destroy();
  return got;
}

// ---- Philox ------------------------------------------------------------------------------------------

test('GPU Philox4x32-10 equals prng.ts bit for bit (Random123 vectors, random and extreme words)', async () => {
  const device = await testDevice();
  const rng = new Rng(1);
  const edge = [0, 1, 2, 3, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0x243f6a88, 0xa4093822];
  const cases: number[][] = [
    [0, 0, 0, 0, 0, 0],
    [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff],
    [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0],
  ];
  for (let c = 0; c < 1500; c++) {
    cases.push(Array.from({ length: 6 }, () => (rng.next() < 0.3 ? edge[rng.int(edge.length)] : rng.nextU32())));
  }
  const CASES = createStorage(device, new Uint32Array(cases.flat()), 'cases');
  const OUT = poisonedWords(device, 4 * cases.length);
  await run(device, [probePhiloxLaunch(device, cases.length, { cases: CASES, out: OUT })]);
  const got = await readWords(device, OUT, 4 * cases.length, 'philox');
  const want = new Uint32Array(4);
  cases.forEach((c, i) => {
    philox4x32(c[0], c[1], c[2], c[3], c[4], c[5], want);
    assert.deepEqual(
      [...got.subarray(4 * i, 4 * i + 4)],
      [...want],
      `case ${i}: ${c.map((v) => v.toString(16)).join(' ')}`,
    );
  });
  assert.deepEqual(
    [...got.subarray(0, 4)].map((v) => v.toString(16)),
    ['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8'],
    'Random123 KAT',
  );
  CASES.destroy();
  OUT.destroy();
});

test('GPU randomU32 equals prng.ts for many (seed, round, stream, purpose, i), i up to 2^32 − 1', async () => {
  const device = await testDevice();
  const contexts: CodecContext[] = [
    { seed: 0, round: 0, stream: 0 },
    { seed: 42, round: 3, stream: 1 },
    { seed: 0xffffffff, round: 0xffffffff, stream: 0xffffffff },
    { seed: 0x9e3779b9, round: 2 ** 31, stream: 0x7fffffff },
  ];
  const count = 1003; // odd: the last Philox block is used in part
  for (const ctx of contexts) {
    for (const [purpose, start] of [
      [PURPOSE_STOCHASTIC_ROUNDING, 0],
      [2, 5],
      [0xffffffff, 2 ** 32 - count],
      [0x80000000, 2 ** 31 - 501],
    ]) {
      const OUT = poisonedWords(device, count);
      await run(device, [probeRandomU32Launch(device, ctx, purpose, start, count, { out: OUT })]);
      const got = await readWords(device, OUT, count, 'random_u32');
      const want = fillRandomU32(ctx, purpose, start, new Uint32Array(count));
      assert.deepEqual(got, want, `ctx ${JSON.stringify(ctx)} purpose ${purpose} start ${start}`);
      assert.equal(got[count - 1], randomU32(ctx, purpose, start + count - 1));
      OUT.destroy();
    }
  }
});

// ---- quotient and rounding probe -----------------------------------------------------------------------

const F32_MIN_NORMAL = 2 ** -126;

test('GPU quotient f32(|x|/step) and both roundings equal the CPU on ties, thresholds, tiny and huge quotients', async () => {
  const device = await testDevice();
  const rng = new Rng(2);
  const cases: number[][] = []; // x bits, step bits, u, L
  const L = [127, 7, 1];
  const randomU = () => (rng.next() < 0.05 ? [0, 255, 256, 0xffffffff, 0xffffff00][rng.int(5)] : rng.nextU32());
  const randomStep = () => {
    // a positive normal f32 with exponent in [-107, 110], random significand (or a power of two)
    const e = -107 + rng.int(218);
    return Math.fround((rng.next() < 0.3 ? 1 : 1 + rng.next()) * 2 ** e);
  };
  const push = (x: number, s: number, u: number, l: number) => cases.push([f32Bits(x), f32Bits(s), u >>> 0, l]);
  for (let c = 0; c < 3000; c++) {
    const l = L[c % 3];
    const s = randomStep();
    const sign = rng.next() < 0.5 ? -1 : 1;
    const kind = c % 6;
    if (kind === 0) {
      // typical quotients in [0, L + 1]
      push(sign * (l + 1) * rng.next() * s, s, randomU(), l);
    } else if (kind === 1) {
      // exact ties k + ½ (s a power of two, so x = (k + ½)·s is exact)
      const p = 2 ** (-100 + rng.int(200));
      push(sign * (rng.int(l + 1) + 0.5) * p, p, randomU(), l);
    } else if (kind === 2) {
      // stochastic thresholds: t = ±(u24 + δ)·2^-24 or ±(2^24 − u24 − δ)·2^-24 exactly, δ ∈ {−1, 0, 1}
      const p = 2 ** (-90 + rng.int(180));
      const u = randomU();
      const u24 = u >>> 8;
      const delta = rng.int(3) - 1;
      const m = rng.next() < 0.5 ? u24 + delta : 2 ** 24 - u24 - delta;
      push(sign * m * 2 ** -24 * p, p, u, l);
      // and with an integer part: t = ±(f + j·2^-(24−bits(f))) around the threshold of u
      const f = rng.int(l + 1);
      const fracBits = 24 - (f === 0 ? 0 : 32 - Math.clz32(f));
      const j = Math.min(2 ** fracBits - 1, Math.max(0, Math.floor((u24 / 2 ** 24) * 2 ** fracBits) + rng.int(3) - 1));
      push(sign * (f + j * 2 ** -fracBits) * p, p, u, l);
    } else if (kind === 3) {
      // tiny quotients: below 2^-24, around the subnormal range and its 2^-150 tie, and x subnormal
      const e = -24 - rng.int(140);
      const t = (1 + rng.next()) * 2 ** e;
      const s2 = Math.fround(Math.max(2 ** -107, s));
      push(sign * t * s2, s2, rng.next() < 0.5 ? rng.int(512) : randomU(), l); // u24 ∈ {0, 1} half the time
      const sub = rng.int(2 ** 23) + 1; // a subnormal x
      push(sign * sub * 2 ** -149, Math.fround(2 ** (-107 + rng.int(30))), rng.int(512), l);
    } else if (kind === 4) {
      // raw bit patterns of x (any finite f32) against a random step
      let xb = rng.nextU32();
      if ((xb & 0x7f800000) === 0x7f800000) xb &= 0xbfffffff;
      cases.push([xb, f32Bits(s), randomU(), l]);
    } else {
      // huge quotients (clamped) and quotients that round up to 256 or to a power of two
      const e = rng.int(3);
      const t =
        e === 0
          ? 256 * (1 + rng.next()) * 2 ** rng.int(100)
          : e === 1
            ? 256 - 2 ** -17 * rng.next()
            : 2 ** rng.int(8) * (1 - 2 ** -25);
      push(sign * t * s, s, randomU(), l);
    }
  }
  // The 2^-150 tie and its neighbours: x = 2^-149 (the smallest subnormal) over steps 2^1, 2^1·(1 ± ulp).
  for (const s of [2, Math.fround(2 * (1 + 2 ** -23)), Math.fround(2 * (1 - 2 ** -24)), 1, 4]) push(2 ** -149, s, 0, 1);
  // Filter cases whose x overflowed or whose step is not a positive normal f32.
  const ok = cases.filter(([xb, sb]) => (xb & 0x7f800000) !== 0x7f800000 && sb >= 0x00800000 && sb < 0x7f800000);
  assert.ok(ok.length > 3000);
  const CASES = createStorage(device, new Uint32Array(ok.flat()), 'cases');
  const OUT = poisonedWords(device, 4 * ok.length);
  await run(device, [probeQuantLaunch(device, ok.length, { cases: CASES, out: OUT })]);
  const got = await readWords(device, OUT, 4 * ok.length, 'probe_quant');
  const kinds = [0, 0, 0, 0];
  let ties = 0;
  let thresholds = 0; // stochastic cases with t·2^24 within 1 of u24 or of 2^24 − u24
  ok.forEach(([xb, sb, u, l], c) => {
    const x = f32FromBits(xb);
    const s = f32FromBits(sb);
    const what = `case ${c}: x=${x} (0x${xb.toString(16)}) step=${s} u=0x${u.toString(16)} L=${l}`;
    const t = Math.fround(Math.abs(x) / s);
    const [qb, kind, qn, qs] = got.subarray(4 * c, 4 * c + 4);
    kinds[kind]++;
    if (kind === 2) assert.equal(f32FromBits(qb), t, `${what}: quotient`);
    else if (kind === 3) assert.ok(t >= 256, `${what}: GPU says >= 256, CPU ${t}`);
    else if (kind === 1) assert.ok(t > 0 && t <= F32_MIN_NORMAL, `${what}: GPU says tiny, CPU ${t}`);
    else assert.equal(t, 0, `${what}: GPU says 0`);
    assert.equal(qn | 0, quantizeNearest(x, s, l) | 0, `${what}: nearest`);
    assert.equal(qs | 0, quantizeStochastic(x, s, l, u) | 0, `${what}: stochastic`);
    if (t - Math.floor(t) === 0.5) ties++;
    if (t < 1 && Math.min(Math.abs(t * 2 ** 24 - (u >>> 8)), Math.abs(t * 2 ** 24 - 2 ** 24 + (u >>> 8))) <= 1)
      thresholds++;
  });
  // Every class was exercised.
  assert.ok(
    kinds.every((k) => k > 20),
    `quotient kinds ${kinds}`,
  );
  assert.ok(ties > 300 && thresholds > 300, `ties ${ties}, thresholds ${thresholds}`);
  CASES.destroy();
  OUT.destroy();
});

// ---- encode ------------------------------------------------------------------------------------------

for (const bits of BITS) {
  for (const rounding of ROUNDINGS) {
    test(`GPU q${bits} ${rounding} encode equals blockQuantCodec's bytes (n 1…1031, blocks 64, 7, 100, 2048)`, async () => {
      const device = await testDevice();
      const configs: [number, number][] = [
        [1, 64],
        [7, 64],
        [257, 64],
        [1031, 64],
        [1031, 7], // blocks shorter than a word: up to 3 steps per code word
        [1031, 100], // blocks start mid-word
        [1031, 2048], // one block longer than n (and than a workgroup's 64 lanes)
      ];
      for (const [n, block] of configs) {
        const o = { bits, block, rounding };
        const x = update(n, new Rng(1000 * bits + n + block), Math.min(block, 100));
        const cpu = blockQuantCodec(o).encode(x, CTX);
        const gpu = await gpuQuantize(device, x, o, CTX);
        assertSameBytes(`q${bits} ${rounding} n=${n} block=${block}`, gpu, cpu, Math.ceil(n / block));
      }
    });
  }
}

test('GPU q4 stochastic encode, n = 65537: same bytes; another context gives other codes', async () => {
  const device = await testDevice();
  const n = 65537;
  const o = { bits: 4 as QuantBits, block: 64, rounding: 'stochastic' as Rounding };
  const x = update(n, new Rng(9), 64);
  const gpu = await gpuQuantize(device, x, o, CTX);
  assertSameBytes('n=65537', gpu, blockQuantCodec(o).encode(x, CTX), Math.ceil(n / 64));
  const other = await gpuQuantize(device, x, o, { ...CTX, round: CTX.round + 1 });
  assertSameBytes(
    'n=65537 round+1',
    other,
    blockQuantCodec(o).encode(x, { ...CTX, round: CTX.round + 1 }),
    Math.ceil(n / 64),
  );
  let differ = 0;
  for (let w = Math.ceil(n / 64); w < gpu.length; w++) if (gpu[w] !== other[w]) differ++;
  assert.ok(differ > 0.5 * (gpu.length - Math.ceil(n / 64)), `only ${differ} code words changed with the round`);
});

test('GPU encode of exact ties, stochastic thresholds, subnormal and tiny values equals the CPU (step exactly 1)', async () => {
  const device = await testDevice();
  for (const bits of BITS) {
    const L = quantLevels(bits);
    const block = 32;
    const n = 8 * block;
    const ctx = { seed: 5, round: 6, stream: 7 };
    const x = new Float32Array(n);
    const rng = new Rng(bits);
    for (let i = 0; i < n; i++) {
      const u24 = randomU32(ctx, PURPOSE_STOCHASTIC_ROUNDING, i) >>> 8;
      const sign = i % 2 ? -1 : 1;
      const delta = rng.int(3) - 1;
      switch (Math.floor(i / block) % 4) {
        case 0: // k + ½ ties
          x[i] = sign * (rng.int(L) + 0.5);
          break;
        case 1: // t = ±(u24 + δ)·2^-24: the stochastic threshold of this very element
          x[i] = sign * Math.max(1, u24 + delta) * 2 ** -24;
          break;
        case 2: // t = −(2^24 − u24 − δ)·2^-24: the threshold seen from below zero
          x[i] = -Math.min(2 ** 24 - 1, 2 ** 24 - u24 - delta) * 2 ** -24;
          break;
        default: // subnormal and tiny values
          x[i] =
            sign * (i % 3 === 0 ? (rng.int(2 ** 23) + 1) * 2 ** -149 : (1 + rng.next()) * 2 ** -(25 + rng.int(100)));
      }
    }
    for (let b = 0; b < n; b += block) x[b] = b % (2 * block) ? -L : L; // maxabs = L: step exactly 1
    for (const rounding of ROUNDINGS) {
      const o = { bits, block, rounding };
      const cpu = blockQuantCodec(o).encode(x, ctx);
      assert.ok(
        new Float32Array(cpu.buffer, 0, n / block).every((s) => s === 1),
        'precondition: steps of 1',
      );
      assertSameBytes(`q${bits} ${rounding} ties`, await gpuQuantize(device, x, o, ctx), cpu, n / block);
    }
  }
});

test('GPU encode marks a block holding NaN or ±Inf with a NaN step and codes 0; other blocks unchanged', async () => {
  const device = await testDevice();
  const n = 300;
  const o = { bits: 4 as QuantBits, block: 64, rounding: 'stochastic' as Rounding };
  const x = update(n, new Rng(11), 64);
  const clean = blockQuantCodec(o).encode(x, CTX);
  x[70] = NaN;
  x[299] = -Infinity;
  const gpu = await gpuQuantize(device, x, o, CTX);
  const nb = 5;
  const steps = new Float32Array(gpu.buffer, gpu.byteOffset, nb);
  assert.ok(Number.isNaN(steps[1]) && Number.isNaN(steps[4]), `steps ${[...steps]}`);
  const want = new Uint32Array(clean.buffer);
  for (const b of [0, 2, 3]) assert.equal(gpu[b], want[b], `step ${b}`);
  // q4: 8 codes per word; block 1 is words 8..15, block 4 (256..299) words 32..37: all 0.
  for (let w = 0; w < gpu.length - nb; w++) {
    const inBad = (w >= 8 && w < 16) || w >= 32;
    assert.equal(gpu[nb + w], inBad ? 0 : want[nb + w], `code word ${w}`);
  }
});

test('GPU encode over a folded 2-D grid (per-dimension limit 4) equals the CPU', async () => {
  const device = await testDevice();
  const n = 1031; // q2, block 100: 11 blocks on a 4×3 grid (one surplus workgroup), 65 code words in 2 workgroups
  for (const rounding of ROUNDINGS) {
    const o = { bits: 2 as QuantBits, block: 100, rounding };
    const x = update(n, new Rng(12), 100);
    const folded = await gpuQuantize(device, x, o, CTX, 4);
    assertSameBytes(`2-D ${rounding}`, folded, blockQuantCodec(o).encode(x, CTX), 11);
    const n2 = 1779; // q8: 445 code words → 7 workgroups on a 4×2 grid (one surplus)
    const o2 = { bits: 8 as QuantBits, block: 1000, rounding };
    const x2 = update(n2, new Rng(13), 100);
    assertSameBytes(
      `2-D words ${rounding}`,
      await gpuQuantize(device, x2, o2, CTX, 4),
      blockQuantCodec(o2).encode(x2, CTX),
      Math.ceil(n2 / 1000),
    );
  }
});

// ---- error feedback ------------------------------------------------------------------------------------

for (const [bits, block, rounding] of [
  [4, 64, 'stochastic'],
  [8, 100, 'nearest'],
  [2, 7, 'stochastic'],
] as [QuantBits, number, Rounding][]) {
  test(`GPU error-feedback q${bits} ${rounding} block ${block} follows the CPU ErrorFeedback over 3 rounds (bytes and residual exact)`, async () => {
    const device = await testDevice();
    const n = 1031;
    const o = { bits, block, rounding };
    const codec = blockQuantCodec(o);
    const rng = new Rng(20 + bits);
    const delta = createStorage(device, 4 * n, 'delta');
    const residual = createStorage(device, new Float32Array(n), 'residual');
    const words = quantWords(n, o);
    const out = poisonedWords(device, words);
    const launches = quantizeBlockErrorFeedbackLaunches(device, n, o, CTX, { delta, residual, out });
    const ef = new ErrorFeedback(codec, n);
    for (let round = 0; round < 3; round++) {
      const ctx = { ...CTX, round: CTX.round + round };
      setLaunchContext(device, launches, ctx);
      const d = update(n, rng, 50);
      upload(device, delta, d);
      upload(device, out, new Uint32Array(words).fill(POISON));
      await run(device, launches, true);
      const gpu = await readWords(device, out, words, `round ${round}`);
      const cpu = ef.encode(d, ctx);
      assertSameBytes(`round ${round}`, gpu, cpu, Math.ceil(n / block));
      const r = new Float32Array(await readBuffer(device, residual, 4 * n));
      for (let i = 0; i < n; i++) {
        if (!Object.is(r[i], ef.residual[i]))
          assert.fail(`round ${round}: residual ${i} is ${r[i]}, the CPU has ${ef.residual[i]}`);
      }
    }
    launches.forEach((l) => l.uniform?.destroy());
    [delta, residual, out].forEach((b) => b.destroy());
  });
}

test('GPU error feedback with NaN/Inf in a block: NaN step, residual 0 there; other blocks as the CPU', async () => {
  const device = await testDevice();
  const n = 300;
  const o = { bits: 4 as QuantBits, block: 64, rounding: 'stochastic' as Rounding };
  const d = update(n, new Rng(14), 64);
  const ef = new ErrorFeedback(blockQuantCodec(o), n);
  ef.residual.fill(0.25);
  const cpu = new Uint32Array(ef.encode(d, CTX).buffer); // blocks are independent: the clean run's good blocks
  const bad = d.slice();
  bad[70] = NaN;
  bad[299] = -Infinity;
  const delta = createStorage(device, bad, 'delta');
  const residual = createStorage(device, new Float32Array(n).fill(0.25), 'residual');
  const words = quantWords(n, o);
  const out = poisonedWords(device, words);
  await run(device, quantizeBlockErrorFeedbackLaunches(device, n, o, CTX, { delta, residual, out }));
  const gpu = await readWords(device, out, words, 'ef bad');
  const r = new Float32Array(await readBuffer(device, residual, 4 * n));
  const steps = new Float32Array(gpu.slice(0, 5).buffer);
  assert.ok(Number.isNaN(steps[1]) && Number.isNaN(steps[4]), `steps ${[...steps]}`);
  for (const b of [0, 2, 3]) assert.equal(gpu[b], cpu[b], `step ${b}`);
  for (let i = 0; i < n; i++) {
    const inBad = (i >= 64 && i < 128) || i >= 256;
    assert.ok(
      Object.is(r[i], inBad ? 0 : ef.residual[i]),
      `residual ${i}: ${r[i]}, want ${inBad ? 0 : ef.residual[i]}`,
    );
  }
  [delta, residual, out].forEach((b) => b.destroy());
});

// ---- decode --------------------------------------------------------------------------------------------

test('GPU dequantize equals blockQuantCodec.decode exactly; refused codes and steps give NaN', async () => {
  const device = await testDevice();
  for (const bits of BITS) {
    for (const [n, block] of [
      [1, 64],
      [257, 7],
      [1031, 100],
    ]) {
      const o = { bits, block, rounding: 'stochastic' as Rounding };
      const codec = blockQuantCodec(o);
      const x = update(n, new Rng(30 + n + bits), Math.min(block, 50));
      const bytes = codec.encode(x, CTX);
      const P = createStorage(device, bytes, 'payload');
      const Y = poisonedWords(device, n, 'y');
      await run(device, [dequantizeBlockLaunch(device, n, o, { payload: P, y: Y })]);
      const got = new Float32Array((await readWords(device, Y, n, `dequant q${bits} n=${n}`)).slice().buffer);
      const want = codec.decode(bytes, n, CTX);
      for (let i = 0; i < n; i++) {
        if (!Object.is(got[i], want[i]))
          assert.fail(`q${bits} n=${n} block=${block}: value ${i} is ${got[i]}, the CPU decodes ${want[i]}`);
      }
      P.destroy();
      Y.destroy();
    }
    // Refused inputs: the code −2^(bits−1) in element 1, a negative step for block 1 (elements 4..7).
    const n = 8;
    const o = { bits, block: 4, rounding: 'nearest' as Rounding };
    const bytes = blockQuantCodec(o).encode(update(n, new Rng(40), 8));
    const dv = new DataView(bytes.buffer);
    dv.setFloat32(4, -1, true);
    const word = dv.getUint32(8, true);
    dv.setUint32(8, (word & ~(((1 << bits) - 1) << bits)) | ((1 << (bits - 1)) << bits), true);
    const P = createStorage(device, bytes, 'payload');
    const Y = poisonedWords(device, n, 'y');
    await run(device, [dequantizeBlockLaunch(device, n, o, { payload: P, y: Y })]);
    const got = new Float32Array((await readWords(device, Y, n, 'refused')).slice().buffer);
    const nan = [1, 4, 5, 6, 7];
    for (let i = 0; i < n; i++)
      assert.equal(Number.isNaN(got[i]), nan.includes(i), `q${bits} refused: value ${i} is ${got[i]}`);
    P.destroy();
    Y.destroy();
  }
});

test('GPU error-feedback residual of a payload: d − decode exactly (code 0 copies d: −0, subnormals), untouched when the flags name a bad d', async () => {
  const device = await testDevice();
  for (const bits of BITS) {
    for (const [n, block] of [
      [1, 64],
      [257, 7],
      [1031, 64],
    ]) {
      const o = { bits, block, rounding: 'stochastic' as Rounding };
      const codec = blockQuantCodec(o);
      const d = update(n, new Rng(50 + n + bits), Math.min(block, 50));
      // Codes of 0 on values that must survive bit for bit: −0, subnormals, and a block below 2^-100 (step 0).
      for (let i = 3; i < n; i += 11) d[i] = [-0, 1e-40, -3e-45, 2e-39][(i >> 2) & 3];
      if (n > 2 * block) for (let i = block; i < 2 * block; i++) d[i] = (i & 1 ? 1 : -1) * 1e-32;
      const bytes = codec.encode(d, CTX);
      const sent = codec.decode(bytes, n, CTX);
      const want = new Uint32Array(Float32Array.from(d, (v, i) => v - sent[i]).buffer);
      const D = createStorage(device, d, 'd');
      const P = createStorage(device, bytes, 'payload');
      const R = poisonedWords(device, n, 'residual');
      const flags = createStorage(device, new Uint32Array([0xffffffff, 0xffffffff]), 'flags');
      const launch = dequantizeResidualLaunch(device, n, o, { payload: P, d: D, residual: R, flags });
      await run(device, [launch], true);
      const got = await readWords(device, R, n, `q${bits} n=${n}`);
      for (let i = 0; i < n; i++) {
        if (got[i] !== want[i])
          assert.fail(
            `q${bits} n=${n} block=${block}: residual ${i} is 0x${got[i].toString(16)}, ` +
              `the CPU has 0x${want[i].toString(16)} (d = ${d[i]})`,
          );
      }
      // A flagged non-finite d (word 1) leaves the residual alone.
      upload(device, flags, new Uint32Array([0xffffffff, n - 1]));
      upload(device, R, new Uint32Array(n).fill(POISON));
      await run(device, [launch]);
      assert.ok(
        (await readWords(device, R, n, 'flagged')).every((w) => w === POISON),
        `q${bits} n=${n}: residual written despite the flag`,
      );
      [D, P, R, flags].forEach((b) => b.destroy());
    }
  }
});
