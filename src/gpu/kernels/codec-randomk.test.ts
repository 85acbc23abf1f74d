// GPU random-k (codec_quant.wgsl randomk_indices / randomk_gather) and the f16 value codec on the GPU,
// against the CPU codecs, exactly: the indices equal randomkIndices (Feistel permutation, cycle walking,
// round keys from Philox), and the payloads equal randomkCodec({fraction, values}).encode byte for byte
// with values f32 (the gather alone), q4 stochastic (gather then quantize) and f16 (gather then
// half.wgsl's f32_to_half, whose layout and rounding are plain.ts's f16Codec's). Outputs are poisoned
// with 0xDEADBEEF plus a spare word that must survive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../util/rng';
import { createStorage, readBuffer } from '../buffers';
import { testDevice, run } from '../test-helpers';
import type { CodecContext } from '../../compress/codec';
import { randomkCodec, randomkIndices } from '../../compress/randomk';
import { keepCount } from '../../compress/sparse';
import { blockQuantCodec, type QuantBits, type Rounding } from '../../compress/quantize';
import { f16Codec } from '../../compress/plain';
import { composeCodecs } from '../../compress/compose';
import { randomkGatherLaunch, randomkHalfLaunches, randomkIndicesLaunch, randomkQuantLaunches } from './codec-randomk';
import { quantWords } from './codec-quant';
import { f32ToHalfLaunch, halfWords } from './half';

const POISON = 0xdeadbeef;
const CONTEXTS: CodecContext[] = [
  { seed: 17, round: 5, stream: 2 },
  { seed: 0xffffffff, round: 2 ** 31 + 3, stream: 0xfffffffe },
];

function poisonedWords(device: GPUDevice, words: number, label = 'poisoned'): GPUBuffer {
  return createStorage(device, new Uint32Array(words + 1).fill(POISON), label);
}

async function readWords(device: GPUDevice, buf: GPUBuffer, words: number, what: string): Promise<Uint32Array> {
  const all = new Uint32Array(await readBuffer(device, buf, 4 * (words + 1)));
  assert.equal(all[words], POISON, `${what}: the word after the output was written`);
  return all.subarray(0, words);
}

/** Fresh random values, never 0, magnitudes over 3 decades. */
function update(n: number, rng: Rng): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let v = 0;
    while (v === 0) v = Math.fround((2 * rng.next() - 1) * 10 ** (-3 * rng.next()));
    x[i] = v;
  }
  return x;
}

function assertWordsEqual(what: string, gpu: Uint32Array, cpu: Uint8Array): void {
  const want = new Uint32Array(cpu.buffer, cpu.byteOffset, cpu.byteLength / 4);
  assert.equal(gpu.length, want.length, `${what}: words`);
  for (let w = 0; w < want.length; w++) {
    if (gpu[w] !== want[w]) assert.fail(`${what}: word ${w} is 0x${gpu[w].toString(16)}, the CPU wrote 0x${want[w].toString(16)}`);
  }
}

test('GPU random-k indices and f32 payload equal randomkIndices and randomkCodec.encode (n 1…65537, k 1…n)', async () => {
  const device = await testDevice();
  for (const ctx of CONTEXTS) {
    for (const n of [1, 7, 257, 1031, 65537]) {
      for (const fraction of [0.001, 0.1, 0.5, 1]) {
        if (n === 65537 && fraction > 0.1) continue; // keeps the CPU reference fast
        const k = keepCount(fraction, n);
        const what = `ctx ${ctx.seed} n=${n} k=${k}`;
        const x = update(n, new Rng(n + 1000 * fraction));
        const X = createStorage(device, x, 'x');
        const IDX = poisonedWords(device, k, 'indices');
        const OUT = poisonedWords(device, k, 'kept');
        await run(device, [randomkIndicesLaunch(device, n, k, ctx, { indices: IDX }), randomkGatherLaunch(device, n, k, ctx, { x: X, out: OUT })]);
        const idx = await readWords(device, IDX, k, what);
        assert.deepEqual(idx, randomkIndices(ctx, n, k), `${what}: indices`);
        assertWordsEqual(`${what}: payload`, await readWords(device, OUT, k, what), randomkCodec({ fraction }).encode(x, ctx));
        [X, IDX, OUT].forEach((b) => b.destroy());
      }
    }
  }
});

test('GPU random-k over a folded 2-D grid (per-dimension limit 3) equals the CPU', async () => {
  const device = await testDevice();
  const ctx = CONTEXTS[1];
  const n = 1031;
  const k = 450; // 8 workgroups on a 3×3 grid: one surplus workgroup
  const x = update(n, new Rng(3));
  const X = createStorage(device, x, 'x');
  const IDX = poisonedWords(device, k, 'indices');
  const OUT = poisonedWords(device, k, 'kept');
  const opts = { maxWorkgroupsPerDim: 3 };
  await run(device, [randomkIndicesLaunch(device, n, k, ctx, { indices: IDX }, opts), randomkGatherLaunch(device, n, k, ctx, { x: X, out: OUT }, opts)]);
  const idx = randomkIndices(ctx, n, k);
  assert.deepEqual(await readWords(device, IDX, k, 'folded'), idx);
  assertWordsEqual('folded payload', await readWords(device, OUT, k, 'folded'), new Uint8Array(Float32Array.from(idx, (i) => x[i]).buffer));
  [X, IDX, OUT].forEach((b) => b.destroy());
});

test('GPU random-k → q4 stochastic (block 64) and random-k → q2 nearest (block 7) equal the composed CPU codec', async () => {
  const device = await testDevice();
  for (const [bits, block, rounding] of [
    [4, 64, 'stochastic'],
    [2, 7, 'nearest'],
  ] as [QuantBits, number, Rounding][]) {
    const q = blockQuantCodec({ bits, block, rounding });
    for (const ctx of CONTEXTS) {
      for (const [n, fraction] of [
        [1, 0.1],
        [257, 0.1],
        [1031, 0.25],
        [4099, 0.1],
      ]) {
        const codec = composeCodecs(randomkCodec({ fraction }), q);
        const k = keepCount(fraction, n);
        const x = update(n, new Rng(n + bits));
        const X = createStorage(device, x, 'x');
        const KEPT = createStorage(device, 4 * k, 'kept');
        const words = quantWords(k, q);
        const OUT = poisonedWords(device, words, 'payload');
        await run(device, randomkQuantLaunches(device, n, k, q, ctx, { x: X, kept: KEPT, out: OUT }));
        const what = `${codec.name} ctx ${ctx.seed} n=${n}`;
        assertWordsEqual(what, await readWords(device, OUT, words, what), codec.encode(x, ctx));
        [X, KEPT, OUT].forEach((b) => b.destroy());
      }
    }
  }
});

test('f32_to_half writes f16Codec.encode bytes (n 1…1031), and random-k → f16 equals the composed CPU codec', async () => {
  const device = await testDevice();
  for (const n of [1, 7, 257, 1031]) {
    const x = update(n, new Rng(40 + n));
    for (let i = 0; i < n; i += 5) x[i] *= 2 ** (-20 * (i % 3)); // f16 subnormals and values that round to 0
    const X = createStorage(device, x, 'x');
    const OUT = poisonedWords(device, halfWords(n), 'f16');
    await run(device, [f32ToHalfLaunch(device, n, { src: X, dst: OUT })]);
    assertWordsEqual(`f16 n=${n}`, await readWords(device, OUT, halfWords(n), `f16 n=${n}`), f16Codec.encode(x));
    [X, OUT].forEach((b) => b.destroy());
  }
  const ctx = CONTEXTS[0];
  for (const [n, fraction] of [
    [7, 0.5],
    [1031, 0.1],
  ]) {
    const k = keepCount(fraction, n);
    const x = update(n, new Rng(50 + n));
    const X = createStorage(device, x, 'x');
    const KEPT = createStorage(device, 4 * k, 'kept');
    const OUT = poisonedWords(device, halfWords(k), 'payload');
    await run(device, randomkHalfLaunches(device, n, k, ctx, { x: X, kept: KEPT, out: OUT }));
    assertWordsEqual(`random-k → f16 n=${n}`, await readWords(device, OUT, halfWords(k), 'rk f16'), randomkCodec({ fraction, values: f16Codec }).encode(x, ctx));
    [X, KEPT, OUT].forEach((b) => b.destroy());
  }
});
