// f16 storage casts. CPU: known values (ties to even, the subnormal boundary, overflow, NaN), then the
// CPU cast against a brute-force nearest-f16 search on random f32 bit patterns, then exhaustive
// round trips over all 65536 f16 patterns. GPU: both casts bit for bit against the CPU on every f16
// pattern, every midpoint between neighbouring f16 values (exact ties) and its f32 neighbours, and
// random f32 bit patterns (NaN, Inf, huge, f32 subnormals), odd n, a folded 2-D grid, NaN-poisoned
// outputs with a spare tail that must stay untouched. Then what WGSL's own pack2x16float /
// unpack2x16float do on this device (reported; asserted only as far as the spec promises), and
// native 'shader-f16' (reported; skipped with the reason where the adapter lacks it).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../util/rng';
import { createStorage, readBuffer } from '../buffers';
import { nodeGpu } from '../node-device';
import { testDevice, run } from '../gpu.test-helper';
import {
  HALF_MAX,
  f32Bits,
  f32BitsToHalf,
  f32FromBits,
  f32ToHalfBits,
  f32ToHalfBitsSaturate,
  f32ToHalfLaunch,
  halfBitsToF32,
  halfBitsToF32Bits,
  halfToF32Launch,
  halfWords,
  packHalf,
  roundToHalf,
  unpackHalf,
} from './half';

const isNaNBits16 = (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
const hex = (v: number, w = 4) => `0x${(v >>> 0).toString(16).padStart(w, '0')}`;

// ---- CPU ---------------------------------------------------------------------------------------------

test('f32 → f16 bits: known values, ties to even, subnormal boundary, overflow and NaN', () => {
  // [x, IEEE bits (overflow → Inf), saturating bits (the GPU cast)]
  const cases: [number, number, number][] = [
    [1, 0x3c00, 0x3c00],
    [-2, 0xc000, 0xc000],
    [0.1, 0x2e66, 0x2e66],
    [1 / 3, 0x3555, 0x3555],
    [-0, 0x8000, 0x8000],
    [0, 0x0000, 0x0000],
    [HALF_MAX, 0x7bff, 0x7bff],
    [65512, 0x7bff, 0x7bff], // below the midpoint 65520
    [65519.99609375, 0x7bff, 0x7bff], // the f32 just below the midpoint
    [65520, 0x7c00, 0x7bff], // the midpoint: IEEE ties to the even Inf; saturated
    [1e5, 0x7c00, 0x7bff],
    [-3e38, 0xfc00, 0xfbff],
    [Infinity, 0x7c00, 0x7bff],
    [-Infinity, 0xfc00, 0xfbff],
    [NaN, 0x7e00, 0x7e00],
    [2 ** -14, 0x0400, 0x0400], // smallest normal, 6.1035e-5
    [6.1e-5, 0x03ff, 0x03ff], // just below: subnormal 1023·2^-24 (6.0976e-5)
    [2 ** -14 - 2 ** -25, 0x0400, 0x0400], // tie between 0x03ff (odd) and 0x0400 (even)
    [2 ** -14 - 3 * 2 ** -25, 0x03fe, 0x03fe], // tie between 0x03fe (even) and 0x03ff
    [2 ** -24, 0x0001, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000, 0x0000], // tie between 0 (even) and 2^-24
    [f32FromBits(f32Bits(2 ** -25) + 1), 0x0001, 0x0001], // just above the tie
    [3 * 2 ** -25, 0x0002, 0x0002], // tie between 1 and 2 → 2
    [-(2 ** -26), 0x8000, 0x8000],
    [1e-8, 0x0000, 0x0000],
    [f32FromBits(1), 0x0000, 0x0000], // f32 subnormal
    [1 + 2 ** -11, 0x3c00, 0x3c00], // tie between 1 (even) and 1 + 2^-10
    [1 + 3 * 2 ** -11, 0x3c02, 0x3c02], // tie between 0x3c01 and 0x3c02 (even)
    [1 + 2 ** -11 + 2 ** -23, 0x3c01, 0x3c01], // just above a tie
    [1 + 2 ** -11 - 2 ** -24, 0x3c00, 0x3c00], // just below
    [2049, 0x6800, 0x6800], // 2048 + 1: tie → 2048
    [2051, 0x6802, 0x6802], // tie → 2052
    [2047.9999, 0x6800, 0x6800], // rounds up across a binade boundary (carry into the exponent)
    [-65504.5, 0xfbff, 0xfbff],
  ];
  for (const [x, ieee, sat] of cases) {
    assert.equal(hex(f32ToHalfBits(x)), hex(ieee), `f32ToHalfBits(${x})`);
    assert.equal(hex(f32ToHalfBitsSaturate(x)), hex(sat), `f32ToHalfBitsSaturate(${x})`);
  }
  // NaN keeps its sign (from the bits; a JS NaN has none).
  assert.equal(hex(f32BitsToHalf(0xffc00000)), '0xfe00');
  assert.equal(hex(f32BitsToHalf(0x7f800001)), '0x7e00', 'signalling NaN → quiet');
});

test('f16 bits → value: known values', () => {
  const cases: [number, number][] = [
    [0x3c00, 1],
    [0xc000, -2],
    [0x0001, 2 ** -24],
    [0x03ff, 1023 * 2 ** -24],
    [0x0400, 2 ** -14],
    [0x3555, 0.333251953125],
    [0x3c01, 1 + 2 ** -10],
    [0x7bff, 65504],
    [0xfbff, -65504],
    [0x7c00, Infinity],
    [0xfc00, -Infinity],
    [0x8000, -0],
  ];
  for (const [h, v] of cases)
    assert.ok(Object.is(halfBitsToF32(h), v), `halfBitsToF32(${hex(h)}) = ${halfBitsToF32(h)}, expected ${v}`);
  assert.ok(Number.isNaN(halfBitsToF32(0x7e00)) && Number.isNaN(halfBitsToF32(0xfc01)));
  assert.equal(
    hex(halfBitsToF32Bits(0xfc01), 8),
    '0xffc02000',
    'signalling NaN widens to quiet, payload and sign kept',
  );
});

/**
 * Positive finite f16 values by their bits, built by stepping one ulp at a time (independent of the code under test).
 */
function positiveHalves(): Float64Array {
  const v = new Float64Array(0x7c01);
  for (let h = 1; h <= 0x7c00; h++) v[h] = v[h - 1] + 2 ** (Math.max(1, (h - 1) >> 10) - 25);
  assert.equal(v[0x3c00], 1);
  assert.equal(v[0x7bff], 65504);
  assert.equal(v[0x7c00], 65536); // the "next" value past the top: only a rounding neighbour (→ Inf)
  return v;
}

/** Nearest f16 by search, ties to even bits; IEEE overflow. */
function bruteForceHalf(x: number, v: Float64Array): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00;
  let lo = 0;
  let hi = 0x7c00; // v[lo] <= a < v[hi]
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (v[mid] <= a) lo = mid;
    else hi = mid;
  }
  if (v[lo] === a) return sign | lo;
  const dLo = a - v[lo];
  const dHi = v[hi] - a;
  return sign | (dLo < dHi ? lo : dHi < dLo ? hi : lo % 2 === 0 ? lo : hi);
}

test('f32 → f16 matches a brute-force nearest-even search on 300k random f32 bit patterns', () => {
  const v = positiveHalves();
  const rng = new Rng(1601);
  let checked = 0;
  for (let i = 0; i < 300_000; i++) {
    // Half the samples uniform over all bits; half within |x| < 2^17, where f16 has values.
    const bits =
      i % 2 ? rng.nextU32() : ((rng.nextU32() & 0x80000000) | (0x33000000 + rng.int(0x47800000 - 0x33000000))) >>> 0;
    const x = f32FromBits(bits);
    if (Number.isNaN(x)) continue;
    assert.equal(hex(f32ToHalfBits(x)), hex(bruteForceHalf(x, v)), `x = ${x} (bits ${hex(bits, 8)})`);
    checked++;
  }
  assert.ok(checked > 290_000);
});

test('every f16 pattern survives f16 → f32 → f16 (NaN stays NaN with its sign); f32 bits match the value', () => {
  for (let h = 0; h < 0x10000; h++) {
    const x = halfBitsToF32(h);
    const bits = halfBitsToF32Bits(h);
    if (isNaNBits16(h)) {
      assert.ok(Number.isNaN(x) && Number.isNaN(f32FromBits(bits)), hex(h));
      assert.equal(bits >>> 31, h >> 15, `${hex(h)}: NaN sign`);
      assert.equal(hex(f32BitsToHalf(bits)), hex((h & 0x8000) | 0x7e00));
      continue;
    }
    assert.ok(Object.is(f32FromBits(bits), x), `${hex(h)}: bits ${hex(bits, 8)} vs value ${x}`);
    assert.equal(hex(f32ToHalfBits(x)), hex(h), `IEEE round trip of ${hex(h)}`);
    const sat = Math.abs(x) === Infinity ? (h & 0x8000) | 0x7bff : h;
    assert.equal(hex(f32BitsToHalf(bits)), hex(sat), `saturating round trip of ${hex(h)}`);
  }
});

test('packHalf / unpackHalf: two per word, low half first, odd n leaves a zero high half; error ≤ 2^-11 relative', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5].map(halfWords), [0, 1, 1, 2, 2, 3]);
  const w = packHalf([1, -2, 0.5]);
  assert.deepEqual(
    [...w].map((x) => hex(x, 8)),
    ['0xc0003c00', '0x00003800'],
  );
  assert.deepEqual([...unpackHalf(w, 3)], [1, -2, 0.5]);
  assert.throws(() => unpackHalf(w, 5), /5 values need 3 words, got 2/);
  const rng = new Rng(1602);
  const x = rng.uniformArray(10_001, -3, 3);
  const back = unpackHalf(packHalf(x), x.length);
  for (let i = 0; i < x.length; i++) {
    assert.equal(back[i], roundToHalf(x[i]));
    const err = Math.abs(back[i] - x[i]);
    assert.ok(err <= Math.max(2 ** -11 * Math.abs(x[i]), 2 ** -25), `x = ${x[i]}: error ${err}`);
  }
});

// ---- GPU casts --------------------------------------------------------------------------------------

/** f32 bit patterns covering every f16 value, every midpoint and its neighbours, and random bits. */
function castInputs(rng: Rng): Uint32Array {
  const out: number[] = [];
  for (let h = 0; h < 0x10000; h++) out.push(halfBitsToF32Bits(h));
  for (let h = 0; h < 0x7c00; h++) {
    for (const s of [0, 0x80000000]) {
      const mid = (halfBitsToF32(h) + (h === 0x7bff ? 65536 : halfBitsToF32(h + 1))) / 2; // exact in f32
      const b = f32Bits(mid);
      out.push((b | s) >>> 0, ((b + 1) | s) >>> 0, ((b - 1) | s) >>> 0);
    }
  }
  for (let i = 0; i < 100_001; i++) out.push(rng.nextU32());
  return Uint32Array.from(out);
}

async function readU32(device: GPUDevice, buf: GPUBuffer, n: number): Promise<Uint32Array> {
  return new Uint32Array(await readBuffer(device, buf, 4 * n));
}

const POISON = 0x7fc00000; // f32 NaN

test('GPU f32_to_half / half_to_f32 match the CPU bit for bit (every f16, every tie, random bits; odd n; folded grid)', async () => {
  const device = await testDevice();
  const rng = new Rng(1603);
  const all = castInputs(rng);
  const sizes: [number, number | undefined][] = [
    [all.length, undefined], // odd: 0x10000 + 6·0x7c00 + 100001
    [1, undefined],
    [2, undefined],
    [7, undefined],
    [513, undefined],
    [2 * 256 * 7 + 1, 3], // 8 workgroups on a grid at most 3 wide: folded
  ];
  assert.equal(all.length % 2, 1);
  for (const [n, maxWorkgroupsPerDim] of sizes) {
    const x = n === all.length ? all : all.slice(0, n).map((_, i) => all[rng.int(all.length)] ^ (i & 1));
    const tag = `n=${n}${maxWorkgroupsPerDim ? ' (2-D grid)' : ''}`;
    const words = halfWords(n);
    const SRC = createStorage(device, x);
    const HALF = createStorage(device, new Uint32Array(words + 2).fill(POISON));
    const BACK = createStorage(device, new Uint32Array(n + 3).fill(POISON));
    const opts = maxWorkgroupsPerDim ? { maxWorkgroupsPerDim } : {};
    await run(device, [
      f32ToHalfLaunch(device, n, { src: SRC, dst: HALF }, opts),
      halfToF32Launch(device, n, { src: HALF, dst: BACK }, opts),
    ]);
    const half = await readU32(device, HALF, words + 2);
    const back = await readU32(device, BACK, n + 3);
    for (let w = 0; w < words; w++) {
      const lo = f32BitsToHalf(x[2 * w]);
      const hi = 2 * w + 1 < n ? f32BitsToHalf(x[2 * w + 1]) : 0;
      const want = (lo | (hi << 16)) >>> 0;
      if (half[w] !== want) {
        assert.fail(
          `${tag}: word ${w} is ${hex(half[w], 8)}, expected ${hex(want, 8)} ` +
            `(inputs ${hex(x[2 * w], 8)}, ${hex(x[2 * w + 1] ?? 0, 8)})`,
        );
      }
    }
    assert.deepEqual(
      [half[words], half[words + 1]],
      [POISON, POISON],
      `${tag}: f32_to_half wrote past its ${words} words`,
    );
    for (let i = 0; i < n; i++) {
      const want = halfBitsToF32Bits((half[i >> 1] >>> (16 * (i & 1))) & 0xffff);
      if (back[i] !== want)
        assert.fail(`${tag}: half_to_f32 element ${i} is ${hex(back[i], 8)}, expected ${hex(want, 8)}`);
    }
    assert.deepEqual([...back.slice(n)], [POISON, POISON, POISON], `${tag}: half_to_f32 wrote past n`);
    [SRC, HALF, BACK].forEach((b) => b.destroy());
  }
});

test('cast launches reject short bindings and n = 0', async () => {
  const device = await testDevice();
  const B = createStorage(device, 4 * 3);
  assert.throws(() => f32ToHalfLaunch(device, 0, { src: B, dst: B }), /n must be an integer >= 1, got 0/);
  assert.throws(
    () => f32ToHalfLaunch(device, 4, { src: B, dst: B }),
    /f32_to_half src needs 16 bytes, its binding has 12/,
  );
  assert.throws(
    () => halfToF32Launch(device, 7, { src: B, dst: createStorage(device, 28) }),
    /half_to_f32 src needs 16 bytes/,
  );
  B.destroy();
});

// ---- WGSL's builtins and native f16 on this device --------------------------------------------------

async function runProbe(device: GPUDevice, code: string, input: Uint32Array, outWords: number): Promise<Uint32Array> {
  const module = device.createShaderModule({ code, label: 'half-probe' });
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const IN = createStorage(device, input);
  const OUT = createStorage(device, new Uint32Array(outWords).fill(POISON));
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: IN } },
      { binding: 1, resource: { buffer: OUT } },
    ],
  });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(Math.ceil(outWords / 64));
  pass.end();
  device.queue.submit([enc.finish()]);
  const out = await readU32(device, OUT, outWords);
  IN.destroy();
  OUT.destroy();
  return out;
}

test('WGSL unpack2x16float (used by half_matmul) is exact on every finite f16 here; pack2x16float rounding reported', async (t) => {
  const device = await testDevice();
  // unpack: word w holds f16 patterns 2w and 2w+1; out[i] = bits of unpack2x16float(word)[i & 1].
  const words = new Uint32Array(0x8000);
  for (let w = 0; w < words.length; w++) words[w] = ((2 * w) | ((2 * w + 1) << 16)) >>> 0;
  const unpackCode = `
    @group(0) @binding(0) var<storage, read> src: array<u32>;
    @group(0) @binding(1) var<storage, read_write> dst: array<u32>;
    @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
      if (g.x >= arrayLength(&dst)) { return; }
      dst[g.x] = bitcast<u32>(unpack2x16float(src[g.x >> 1u] >> ((g.x & 1u) << 4u)).x);
    }`;
  const got = await runProbe(device, unpackCode, words, 0x10000);
  let flushed = 0;
  for (let h = 0; h < 0x10000; h++) {
    if ((h & 0x7c00) === 0x7c00) continue; // Inf/NaN: WGSL leaves them indeterminate; never fed to half_matmul
    const want = halfBitsToF32Bits(h);
    if ((h & 0x7c00) === 0 && got[h] === (want & 0x80000000) >>> 0) {
      if (got[h] !== want) flushed++; // a subnormal flushed to ±0
      continue;
    }
    assert.equal(hex(got[h], 8), hex(want, 8), `unpack2x16float(${hex(h)})`);
  }
  t.diagnostic(
    `unpack2x16float: exact on all normal f16; ${flushed} of 2046 subnormals flushed to zero on this device`,
  );
  assert.equal(flushed, 0, 'subnormal f16 flushed by unpack2x16float: half_matmul bounds assume exact operands');

  // pack: the WGSL spec lets an inexact conversion pick either neighbour; count how often this device's
  // pack2x16float differs from round-to-nearest-even on in-range ties and their f32 neighbours.
  const inputs = castInputs(new Rng(1604)).filter((b) => {
    const x = f32FromBits(b);
    return Number.isFinite(x) && Math.abs(x) <= HALF_MAX && (b & 0x7f800000) !== 0; // in range, not f32-subnormal
  });
  const n = inputs.length - (inputs.length % 2);
  const packCode = `
    @group(0) @binding(0) var<storage, read> src: array<f32>;
    @group(0) @binding(1) var<storage, read_write> dst: array<u32>;
    @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
      if (g.x >= arrayLength(&dst)) { return; }
      dst[g.x] = pack2x16float(vec2f(src[2u * g.x], src[2u * g.x + 1u]));
    }`;
  const packed = await runProbe(device, packCode, inputs.slice(0, n), n / 2);
  let differ = 0;
  for (let i = 0; i < n; i++) {
    const gotH = (packed[i >> 1] >>> (16 * (i & 1))) & 0xffff;
    const rne = f32BitsToHalf(inputs[i]);
    if (gotH === rne) continue;
    differ++;
    // The only other value WGSL allows is the neighbour on the other side of x.
    const x = f32FromBits(inputs[i]);
    const lo = Math.min(halfBitsToF32(rne), halfBitsToF32(gotH));
    const hi = Math.max(halfBitsToF32(rne), halfBitsToF32(gotH));
    assert.ok(
      lo <= x && x <= hi && Math.abs(rne - gotH) === 1,
      `pack2x16float(${x}) = ${hex(gotH)}: not a neighbour of ${x}`,
    );
  }
  const msg =
    `pack2x16float: ${differ} of ${n} in-range inputs (mostly ` +
    `exact ties) differ from round-to-nearest-even on this device`;
  t.diagnostic(msg);
  if (process.env.STARLING_PRINT_ERRORS) console.log(`[half] ${msg}`);
});

test("shader-f16: reported for this device; the packed layout is native array<f16>'s where the adapter has it", async (t) => {
  const device = await testDevice();
  const has = device.features.has('shader-f16');
  // Whatever the device reports must be true: a shader that enables f16 compiles exactly when it has the feature.
  device.pushErrorScope('validation');
  const module = device.createShaderModule({ code: 'enable f16;\nconst h: f16 = 1.0h;\n', label: 'f16-probe' });
  const info = await module.getCompilationInfo();
  const scoped = await device.popErrorScope();
  const compiled = !info.messages.some((m) => m.type === 'error') && scoped === null;
  assert.equal(
    compiled,
    has,
    `device reports shader-f16 = ${has} but an 'enable f16' shader ${compiled ? 'compiles' : 'fails'}`,
  );
  t.diagnostic(`Starling's device has shader-f16: ${has} (f16 storage uses packed u32 words and needs no feature)`);

  const adapter = await nodeGpu().requestAdapter();
  assert.ok(adapter, 'no adapter');
  const name =
    [adapter.info?.vendor, adapter.info?.architecture, adapter.info?.description].filter(Boolean).join(' ') ||
    'unknown adapter';
  if (!adapter.features.has('shader-f16')) {
    const reason =
      `native f16 check skipped: adapter "${name}" does not offer 'shader-f16' ` +
      `(features: ${[...adapter.features].sort().join(', ') || 'none'})`;
    console.log(`[half] ${reason}`);
    t.skip(reason);
    return;
  }
  // Native f16: read the packed words as array<f16>; every finite value must equal half_to_f32's.
  const f16Device = await adapter.requestDevice({ requiredFeatures: ['shader-f16'], label: 'f16-probe' });
  try {
    const words = new Uint32Array(0x8000);
    for (let w = 0; w < words.length; w++) words[w] = ((2 * w) | ((2 * w + 1) << 16)) >>> 0;
    const code = `enable f16;
      @group(0) @binding(0) var<storage, read> src: array<f16>;
      @group(0) @binding(1) var<storage, read_write> dst: array<u32>;
      @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
        if (g.x >= arrayLength(&dst)) { return; }
        dst[g.x] = bitcast<u32>(f32(src[g.x]));
      }`;
    const got = await runProbe(f16Device, code, words, 0x10000);
    let checked = 0;
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00 || (h & 0x7c00) === 0) continue; // non-finite; subnormals (may be flushed natively)
      assert.equal(hex(got[h], 8), hex(halfBitsToF32Bits(h), 8), `native f16 element ${h}`);
      checked++;
    }
    t.diagnostic(`native array<f16> reads the packed layout: ${checked} normal values identical to half_to_f32`);
  } finally {
    f16Device.destroy();
  }
});
