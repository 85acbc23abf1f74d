// GPU int8 quantize vs the CPU codec (src/compress/int8/int8.ts). Agreement rule: block scales are
// bit-identical (maxabs·f32(1/127) is a correctly rounded multiply on both sides); a quantized value
// may differ by exactly 1, and only where x/scale lies within 4e-6 (relative) of a k + ½ tie, because
// WGSL allows f32 division 2.5 ulp of error. Exact ties (checked with scale 1) round away from zero
// on both. Dequantize is a correctly rounded multiply: it must match the CPU decode exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../util/rng';
import { createStorage, readBuffer, upload } from '../../gpu/buffers';
import { testDevice, poisoned, run, readF32, assertClose } from '../../gpu/test-helpers';
import { int8Codec, int8Scale, INT8_BLOCK } from './int8';
import { ErrorFeedback } from '../error-feedback';
import { quantizeLaunch, dequantizeLaunch, quantizeErrorFeedbackLaunch, int8Words } from './int8.gpu';

function update(n: number, rng: Rng): Float32Array {
  const x = rng.uniformArray(n);
  for (let b = 0; b * INT8_BLOCK < n; b++) {
    const s = 10 ** (-6 * rng.next());
    for (let i = b * INT8_BLOCK; i < Math.min(n, (b + 1) * INT8_BLOCK); i++) x[i] *= s;
  }
  return x;
}

/** Compares GPU bytes with CPU bytes under the agreement rule; returns how many values differed. */
function assertAgree(what: string, gpu: Uint8Array, cpu: Uint8Array, x: Float32Array): number {
  const n = x.length;
  const nb = Math.ceil(n / INT8_BLOCK);
  assert.equal(gpu.length, cpu.length, `${what}: length`);
  assert.deepEqual(gpu.subarray(0, 4 * nb), cpu.subarray(0, 4 * nb), `${what}: scale bytes`);
  assert.deepEqual(gpu.subarray(4 * nb + n), cpu.subarray(4 * nb + n), `${what}: padding bytes`);
  const scales = new Float32Array(cpu.slice(0, 4 * nb).buffer);
  const qg = new Int8Array(gpu.buffer, gpu.byteOffset + 4 * nb, n);
  const qc = new Int8Array(cpu.buffer, cpu.byteOffset + 4 * nb, n);
  let diffs = 0;
  for (let i = 0; i < n; i++) {
    if (qg[i] === qc[i]) continue;
    const t = x[i] / scales[Math.floor(i / INT8_BLOCK)];
    const distToTie = Math.abs(Math.abs(t) - Math.floor(Math.abs(t)) - 0.5);
    assert.ok(Math.abs(qg[i] - qc[i]) === 1 && distToTie <= 4e-6 * Math.abs(t), `${what}: value ${i} GPU ${qg[i]} CPU ${qc[i]} (x/scale = ${t})`);
    diffs++;
  }
  return diffs;
}

async function gpuEncode(device: GPUDevice, x: Float32Array, maxWorkgroupsPerDim?: number): Promise<Uint8Array> {
  const n = x.length;
  const X = createStorage(device, x);
  const out = poisoned(device, int8Words(n));
  await run(device, [quantizeLaunch(device, n, { x: X, out }, { maxWorkgroupsPerDim })]);
  const bytes = new Uint8Array(await readBuffer(device, out, int8Codec.encodedBytes(n)));
  X.destroy();
  out.destroy();
  return bytes;
}

for (const n of [1, 255, 256, 257, 65537]) {
  test(`GPU int8 quantize agrees with the CPU codec, n=${n}`, async () => {
    const device = await testDevice();
    const x = update(n, new Rng(50 + n));
    const bytes = await gpuEncode(device, x);
    assertAgree(`n=${n}`, bytes, int8Codec.encode(x), x);
    // And the CPU codec decodes GPU bytes within its error budget.
    const y = int8Codec.decode(bytes, n);
    const scales = new Float32Array(bytes.slice(0, 4 * Math.ceil(n / INT8_BLOCK)).buffer);
    assertClose('decode(GPU encode)', y, x, (i) => scales[Math.floor(i / INT8_BLOCK)] * (0.5 + 1e-5));
  });
}

test('GPU int8 quantize rounds exact ties away from zero, like the CPU', async () => {
  const device = await testDevice();
  assert.equal(int8Scale(127), 1, 'precondition: maxabs 127 gives scale exactly 1, so k + ½ are exact ties');
  const x = new Float32Array(2 * INT8_BLOCK);
  for (let i = 0; i < x.length; i++) x[i] = ((i % 254) - 127 + 0.5) * (i % 3 === 0 ? -1 : 1);
  x[0] = 127;
  x[INT8_BLOCK] = -127;
  const gpu = await gpuEncode(device, x);
  assert.deepEqual(gpu, int8Codec.encode(x));
});

test('GPU int8 quantize over a 2-D grid (forced small per-dimension limit) matches the 1-D result', async () => {
  const device = await testDevice();
  const x = update(2000, new Rng(8)); // 8 blocks on a 3×3 grid: one surplus workgroup must do nothing
  assert.deepEqual(await gpuEncode(device, x, 3), await gpuEncode(device, x));
});

test('GPU int8 dequantize equals the CPU decode exactly', async () => {
  const device = await testDevice();
  for (const n of [1, 257, 4099]) {
    const x = update(n, new Rng(60 + n));
    const bytes = int8Codec.encode(x);
    const Q = createStorage(device, bytes);
    const Y = poisoned(device, n);
    await run(device, [dequantizeLaunch(device, n, { packed: Q, y: Y })]);
    assertClose(`dequantize n=${n}`, await readF32(device, Y, n), int8Codec.decode(bytes, n), 0);
    Q.destroy();
    Y.destroy();
  }
});

test('GPU error-feedback quantize follows the CPU ErrorFeedback over 3 rounds', async () => {
  const device = await testDevice();
  const n = 1031;
  const rng = new Rng(70);
  const base = createStorage(device, 4 * n);
  const local = createStorage(device, 4 * n);
  const residual = createStorage(device, new Float32Array(n));
  const out = poisoned(device, int8Words(n));
  const launch = quantizeErrorFeedbackLaunch(device, n, { base, local, residual, out });
  const ef = new ErrorFeedback(int8Codec, n);
  for (let round = 0; round < 3; round++) {
    const b = update(n, rng);
    const l = Float32Array.from(b, (v) => v + 0.01 * rng.normal());
    upload(device, base, b);
    upload(device, local, l);
    await run(device, [launch], true); // the launch is reused next round
    const gpu = new Uint8Array(await readBuffer(device, out, int8Codec.encodedBytes(n)));
    const delta = Float32Array.from(b, (v, i) => v - l[i]);
    const d = Float32Array.from(delta, (v, i) => v + ef.residual[i]); // what both sides quantize
    const cpu = ef.encode(delta);
    const diffs = assertAgree(`round ${round}`, gpu, cpu, d);
    const r = await readF32(device, residual, n);
    if (diffs === 0) assertClose(`residual round ${round}`, r, ef.residual, 0);
    // Re-sync so a tie decided differently does not propagate into the next round's comparison.
    upload(device, residual, ef.residual);
  }
  await run(device, [launch]);
  [base, local, residual, out].forEach((x) => x.destroy());
});

test('GPU quantize marks a block holding NaN or Inf with a NaN scale and zeroes its residual', async () => {
  const device = await testDevice();
  const n = 600;
  const b = update(n, new Rng(80));
  b[300] = NaN;
  b[599] = Infinity;
  const base = createStorage(device, b);
  const local = createStorage(device, new Float32Array(n));
  const residual = createStorage(device, new Float32Array(n).fill(0.25));
  const out = poisoned(device, int8Words(n));
  await run(device, [quantizeErrorFeedbackLaunch(device, n, { base, local, residual, out })]);
  const scales = new Float32Array(await readBuffer(device, out, 12));
  assert.ok(Number.isFinite(scales[0]) && scales[0] > 0, `block 0 scale ${scales[0]}`);
  assert.ok(Number.isNaN(scales[1]) && Number.isNaN(scales[2]), `blocks 1, 2 scales ${scales[1]}, ${scales[2]}`);
  const r = await readF32(device, residual, n);
  assert.ok(r.subarray(256).every((v) => v === 0), 'residual of the bad blocks is 0');
  assert.ok(r.subarray(0, 256).every((v) => Number.isFinite(v)), 'residual of the good block stays finite');
  [base, local, residual, out].forEach((x) => x.destroy());
});
