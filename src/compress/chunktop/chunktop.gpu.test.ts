// GPU chunked top-1 (src/compress/chunktop/chunktop.wgsl) against the CPU codec (src/compress/chunktop/chunktop.ts):
// the kept indices, the kept value bits and the payload bytes must be identical. Inputs are fresh random bit
// patterns (never zero): both signs, magnitudes from subnormal to 2^63, and in a third of the chunks
// the winning magnitude copied to a later element (with either sign), so ties must go to the lower
// index. Output buffers are NaN-poisoned so an unwritten entry fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../util/rng';
import { createStorage, readBuffer, upload } from '../../gpu/buffers';
import { testDevice, poisoned, run } from '../../gpu/gpu.test-helper';
import { chunkTopCodec, chunkTopIndices } from './chunktop';
import { blockQuantCodec } from '../quant/quant';
import { chunkTopLaunch, chunkTopPayload } from './chunktop.gpu';
import { EF_FLAG_NONE, EF_FLAGS_BYTES, readTopkKept, topkKeptBytes } from '../topk/topk.gpu';

const ABS = 0x7fffffff;
const SIZES = [1, 7, 257, 1031, 65537];
const CHUNKS = [2, 3, 32, 100, 65536];

const bitsOf = (x: Float32Array) => new Uint32Array(x.buffer, x.byteOffset, x.length);

function update(n: number, chunk: number, rng: Rng): Float32Array {
  const bits = new Uint32Array(n);
  const sign = () => (rng.next() < 0.5 ? 0x80000000 : 0);
  for (let i = 0; i < n; i++) {
    const mag = rng.next() < 0.15 ? 1 + rng.int(0x7fffff) : ((1 + rng.int(190)) << 23) | rng.int(0x800000);
    bits[i] = (mag | sign()) >>> 0;
  }
  const x = new Float32Array(bits.buffer);
  const win = chunkTopIndices(x, chunk);
  for (let j = 0; j < win.length; j++) {
    const lo = j * chunk;
    const len = Math.min(chunk, n - lo);
    if (len > 1 && rng.next() < 1 / 3) {
      const i = lo + rng.int(len);
      if (i !== win[j]) bits[i] = ((bits[win[j]] & ABS) | sign()) >>> 0;
    }
  }
  return x;
}

async function gpuChunkTop(device: GPUDevice, x: Float32Array, chunk: number, maxWorkgroupsPerDim?: number) {
  const n = x.length;
  const m = Math.ceil(n / chunk);
  const X = createStorage(device, x);
  const kept = poisoned(device, topkKeptBytes(m) / 4, 'chunktop-kept');
  await run(device, [chunkTopLaunch(device, n, chunk, { x: X, kept }, { maxWorkgroupsPerDim })]);
  const out = await readTopkKept(device, kept, m);
  [X, kept].forEach((b) => b.destroy());
  return out;
}

test('GPU chunk top selects the CPU kept set and gives the CPU payload bytes, odd sizes and chunk lengths', async () => {
  const device = await testDevice();
  let ties = 0;
  for (const n of SIZES) {
    for (const chunk of CHUNKS) {
      const what = `n=${n} C=${chunk}`;
      const x = update(n, chunk, new Rng(31 * n + chunk));
      const g = await gpuChunkTop(device, x, chunk);
      const idx = chunkTopIndices(x, chunk);
      assert.deepEqual(g.indices, idx, `${what}: kept indices`);
      const xb = bitsOf(x);
      assert.deepEqual(
        bitsOf(g.values),
        Uint32Array.from(idx, (i) => xb[i]),
        `${what}: kept value bits`,
      );
      for (const values of [undefined, blockQuantCodec({ bits: 2, block: 64, rounding: 'nearest' })]) {
        const codec = chunkTopCodec({ chunk, values });
        assert.deepEqual(chunkTopPayload(codec, chunk, n, g), codec.encode(x), `${what} ${codec.name}: payload bytes`);
      }
      for (let j = 0; j < idx.length; j++) {
        for (let i = j * chunk; i < idx[j]; i++) if ((xb[i] & ABS) === (xb[idx[j]] & ABS)) ties++;
      }
      for (let j = 0; j < idx.length; j++) {
        for (let i = idx[j] + 1; i < Math.min(n, j * chunk + chunk); i++)
          if ((xb[i] & ABS) === (xb[idx[j]] & ABS)) ties++;
      }
    }
  }
  assert.ok(ties >= 20, `chunks where a later element tied with the winner: ${ties}`);
});

test('GPU chunk top on a folded 2-D grid (forced small per-dimension limit)', async () => {
  const device = await testDevice();
  const n = 20011;
  const x = update(n, 2, new Rng(5));
  const g = await gpuChunkTop(device, x, 2, 20); // 10006 chunks in 157 workgroups on 20×8 (3 surplus)
  assert.deepEqual(g.indices, chunkTopIndices(x, 2));
});

test('GPU chunk top with error feedback: residual +0 where kept and d where dropped, untouched when d was flagged', async () => {
  const device = await testDevice();
  for (const [n, chunk] of [
    [1031, 32],
    [7, 3],
    [1, 2],
  ] as const) {
    const x = update(n, chunk, new Rng(n + 77));
    const m = Math.ceil(n / chunk);
    const X = createStorage(device, x);
    const kept = poisoned(device, topkKeptBytes(m) / 4, 'chunktop-kept');
    const residual = poisoned(device, n, 'chunktop-residual');
    const flags = createStorage(device, EF_FLAGS_BYTES, 'flags');
    upload(device, flags, new Uint32Array([EF_FLAG_NONE, EF_FLAG_NONE]));
    await run(device, [chunkTopLaunch(device, n, chunk, { x: X, kept, residual, flags })]);
    const idx = chunkTopIndices(x, chunk);
    const want = Float32Array.from(x);
    for (const i of idx) want[i] = 0;
    assert.deepEqual(
      bitsOf(new Float32Array(await readBuffer(device, residual, 4 * n))),
      bitsOf(want),
      `n=${n} C=${chunk}: residual`,
    );
    // A flagged d (ef_prepare found a NaN at element 0) leaves the residual as it was: still the poison.
    const fresh = poisoned(device, n, 'chunktop-residual-2');
    upload(device, flags, new Uint32Array([EF_FLAG_NONE, 0]));
    await run(device, [chunkTopLaunch(device, n, chunk, { x: X, kept, residual: fresh, flags })]);
    assert.ok(
      new Float32Array(await readBuffer(device, fresh, 4 * n)).every(Number.isNaN),
      `n=${n}: residual untouched when flagged`,
    );
    assert.deepEqual((await readTopkKept(device, kept, m)).indices, idx, 'the kept list is still written');
    [X, kept, residual, flags, fresh].forEach((b) => b.destroy());
  }
});

test('chunkTopLaunch and chunkTopPayload check what they are given', async () => {
  const device = await testDevice();
  const X = createStorage(device, new Float32Array(10).fill(1));
  const kept = createStorage(device, topkKeptBytes(5));
  assert.throws(
    () => chunkTopLaunch(device, 10, 1, { x: X, kept }),
    /chunk length must be an integer in \[2, 65536\], got 1/,
  );
  assert.throws(() => chunkTopLaunch(device, 11, 2, { x: X, kept }), /chunktop_select x needs 44 bytes/);
  assert.throws(() => chunkTopLaunch(device, 10, 2, { x: X, kept, residual: X }), /residual and flags go together/);
  const codec = chunkTopCodec({ chunk: 4 });
  const g = { indices: Uint32Array.from([1, 5, 8]), values: Float32Array.from([1, NaN, 2]) };
  assert.throws(() => chunkTopPayload(codec, 4, 10, g), /element 5 of 10 is NaN; only finite values can be encoded/);
  assert.throws(() => chunkTopPayload(codec, 8, 10, g), /needs a chunktop\(8\) codec, got chunktop\(4\)>f32/);
  [X, kept].forEach((b) => b.destroy());
});
