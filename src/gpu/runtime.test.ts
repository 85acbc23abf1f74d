// The runtime pieces: grid folding, pipeline cache, buffer pool, upload/readback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../util/rng';
import { gridFor, packUniform } from './launch';
import { getPipeline, pipelineCount, pipelineCacheKey } from './pipeline-cache';
import { BufferPool } from './buffer-pool';
import { createStorage, readBuffer, readF32, upload } from './buffers';
import { MAP_READ, COPY_DST } from './usage';
import { testDevice, poisoned, run, assertClose } from './gpu.test-helper';
import { geluForwardLaunch, geluForwardCpu } from './kernels/gelu';

test('gridFor folds a 1-D count into x·y >= count within the per-dimension limit', () => {
  for (const [count, max] of [
    [0, 5],
    [1, 5],
    [5, 5],
    [6, 5],
    [24, 5],
    [25, 5],
    [65535 * 3 + 1, 65535],
  ]) {
    const [x, y, z] = gridFor(count, max);
    assert.ok(x <= max && y <= max && z === 1, `${count}/${max} → ${x}×${y}`);
    assert.ok(x * y >= count, `${count}/${max} → ${x}×${y} covers too little`);
    assert.ok(x * y - count < y, `${count}/${max} → ${x}×${y} wastes a whole column`);
  }
  assert.throws(() => gridFor(26, 5), /26 workgroups exceed this GPU's limit of 5²/);
  assert.throws(() => gridFor(1.5, 5), /non-negative integer, got 1.5/);
});

test('a 1-D kernel launched on a folded 2-D grid writes every element once', async () => {
  const device = await testDevice();
  const n = 256 * 7 + 3; // 8 workgroups; with limit 3 the grid is 3×3 and one workgroup is surplus
  const x = new Rng(2).uniformArray(n, -3, 3);
  const X = createStorage(device, x);
  const Y = poisoned(device, n);
  const launch = geluForwardLaunch(device, n, { x: X, y: Y }, { maxWorkgroupsPerDim: 3 });
  assert.deepEqual(launch.grid, [3, 3, 1]);
  await run(device, [launch]);
  assertClose('gelu on a 2-D grid', await readF32(device, Y, n), geluForwardCpu(x), (i) => 2e-6 * (1 + Math.abs(x[i])));
  X.destroy();
  Y.destroy();
});

test('pipelines are cached by shader, entry point and override constants', async () => {
  const device = await testDevice();
  const before = pipelineCount(device);
  const a = getPipeline(device, { shader: 'bias', entry: 'bias_add' });
  assert.equal(getPipeline(device, { shader: 'bias', entry: 'bias_add' }), a);
  const b = getPipeline(device, { shader: 'bias', entry: 'bias_grad' });
  assert.notEqual(a, b);
  assert.equal(pipelineCount(device), before + 2);
  assert.equal(
    pipelineCacheKey({ shader: 'm', entry: 'e', constants: { B: 1, A: 0 } }),
    pipelineCacheKey({ shader: 'm', entry: 'e', constants: { A: 0, B: 1 } }),
  );
  assert.notEqual(
    pipelineCacheKey({ shader: 'm', entry: 'e', constants: { A: 0 } }),
    pipelineCacheKey({ shader: 'm', entry: 'e', constants: { A: 1 } }),
  );
});

test('the buffer pool reuses released buffers by size class and counts its bytes', async () => {
  const device = await testDevice();
  const pool = new BufferPool(device, MAP_READ | COPY_DST, 'test', 1);
  const a = pool.acquire(100);
  assert.equal(a.size, 256);
  const b = pool.acquire(300);
  assert.equal(b.size, 512);
  assert.equal(pool.bytes, 768);
  pool.release(a);
  assert.equal(pool.acquire(200), a, 'same size class comes back');
  const c = pool.acquire(256);
  pool.release(a);
  pool.release(c); // over keepPerClass = 1: destroyed
  assert.equal(pool.bytes, 768);
  const other = device.createBuffer({ size: 256, usage: MAP_READ | COPY_DST });
  assert.throws(() => pool.release(other), /does not belong to pool "test"/);
  other.destroy();
  pool.destroy();
  assert.equal(pool.bytes, 0);
});

test('upload and readBuffer move bytes both ways, at offsets and odd lengths', async () => {
  const device = await testDevice();
  const buf = createStorage(device, 64, 'rw');
  const data = new Uint8Array([1, 2, 3, 4, 5, 6, 7]); // 7 bytes: padded to 8 on upload
  upload(device, buf, data, 8);
  const back = new Uint8Array(await readBuffer(device, buf, 7, 8));
  assert.deepEqual(back, data);
  assert.throws(() => upload(device, buf, new Float32Array(20), 0), /overflows buffer "rw" of 64 bytes/);
  await assert.rejects(readBuffer(device, buf, 8, 60), /overflows buffer "rw"/);
  buf.destroy();
  assert.throws(
    () => createStorage(device, device.limits.maxBufferSize + 4, 'huge'),
    /buffer "huge" needs \d+ bytes; this GPU allows at most/,
  );
});

test('packUniform writes u32 and f32 fields little-endian, padded to 16 bytes', () => {
  const buf = packUniform([7, { f32: 0.5 }, 0xffffffff]);
  assert.equal(buf.byteLength, 16);
  const dv = new DataView(buf);
  assert.equal(dv.getUint32(0, true), 7);
  assert.equal(dv.getFloat32(4, true), 0.5);
  assert.equal(dv.getUint32(8, true), 0xffffffff);
  assert.throws(() => packUniform([-1]), /uniform field 0 must be a u32, got -1/);
});
