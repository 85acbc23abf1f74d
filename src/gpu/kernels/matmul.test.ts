// Matmul: the shared suite (matmul-suite.ts) on the simple variant, the variant table checked
// against the shaders, the selector, and argument checking. The tuned variants run the same suite
// in matmul-tuned.test.ts and matmul-tuned-scalar.test.ts (separate files run in parallel).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createStorage } from '../buffers';
import { shaderSource } from '../shaders';
import { testDevice } from '../test-helpers';
import {
  MATMUL_VARIANTS,
  WEBGPU_DEFAULT_LIMITS,
  chooseMatmulVariant,
  matmulLaunch,
  matmulVariantSupport,
  paddedWork,
  vec4Misalignment,
  type MatmulShape,
} from './matmul';
import { matmulSuite } from './matmul-suite';

matmulSuite('simple', 1000);

test('the variant table matches each shader: workgroup size, tile sizes, workgroup storage', async () => {
  await testDevice(); // loads the shaders in Node
  const elementBytes: Record<string, number> = { f32: 4, vec4f: 16 };
  for (const v of Object.values(MATMUL_VARIANTS)) {
    const src = shaderSource(v.shader);
    const wg = new RegExp(`@workgroup_size\\((\\d+),\\s*(\\d+)\\)\\s*fn ${v.entry}\\(`).exec(src);
    assert.ok(wg, `${v.name}: no @workgroup_size before fn ${v.entry}`);
    assert.deepEqual([Number(wg[1]), Number(wg[2])], [...v.workgroup], `${v.name}: workgroup size`);
    const consts = Object.fromEntries([...src.matchAll(/const (\w+): u32 = (\d+)u;/g)].map((m) => [m[1], Number(m[2])]));
    const tile = [consts.BM ?? consts.TM, consts.BN ?? consts.TN, consts.BK ?? consts.TK];
    assert.deepEqual(tile, [v.tileM, v.tileN, v.tileK], `${v.name}: tile`);
    assert.equal(v.workgroup[0] * v.workgroup[1] * v.perThread[0] * v.perThread[1], v.tileM * v.tileN, `${v.name}: outputs per thread`);
    let bytes = 0;
    for (const m of src.matchAll(/var<workgroup> \w+: array<(\w+), (\d+)>/g)) bytes += elementBytes[m[1]] * Number(m[2]);
    assert.equal(bytes, v.workgroupStorageBytes, `${v.name}: workgroup storage`);
  }
});

test('the selector: tuned for large products, simple for small or thin ones, scalar twin when unaligned', () => {
  const pick = (s: MatmulShape) => chooseMatmulVariant(WEBGPU_DEFAULT_LIMITS, s).name;
  for (const n of [96, 256, 512, 1024, 4096]) assert.equal(pick({ M: n, N: n, K: n }), 'tuned', `${n}³`);
  for (const [transA, transB] of [[false, true], [true, false], [true, true]]) {
    assert.equal(pick({ M: 768, N: 256, K: 1024, transA, transB }), 'tuned');
  }
  assert.equal(pick({ M: 513, N: 513, K: 513 }), 'tuned-scalar', 'odd sizes: no vec4, still tiled for size');
  assert.equal(pick({ M: 512, N: 512, K: 512, batch: 2, strideA: 512 * 512 + 2 }), 'tuned-scalar', 'odd stride');
  assert.equal(pick({ M: 64, N: 64, K: 64 }), 'simple', 'a single small tile');
  assert.equal(pick({ M: 128, N: 128, K: 128 }), 'tuned', 'one full tuned tile');
  assert.equal(pick({ M: 60, N: 200, K: 64 }), 'simple', 'M below half a tuned tile');
  assert.equal(pick({ M: 1, N: 4096, K: 4096 }), 'simple', 'a row vector: 127/128 of a tuned tile is padding');
  assert.equal(pick({ M: 128, N: 128, K: 128, batch: 8 }), 'tuned', 'a batch of tiles fills the device');
  assert.equal(pick({ M: 64, N: 64, K: 64, batch: 64 }), 'simple', 'a 128-tile on a 64×64 product is 3/4 padding');
  // Limits are data: shrink them and the variants that no longer fit drop out, with their reasons.
  const tiny = { ...WEBGPU_DEFAULT_LIMITS, maxComputeWorkgroupStorageSize: 4096 };
  assert.throws(() => chooseMatmulVariant(tiny, { M: 512, N: 512, K: 512 }), /simple: needs 8192 bytes of workgroup storage, the device allows 4096/);
  const narrow = { ...WEBGPU_DEFAULT_LIMITS, maxComputeInvocationsPerWorkgroup: 128 };
  assert.throws(() => chooseMatmulVariant(narrow, { M: 8, N: 8, K: 8 }), /needs 256 invocations per workgroup, the device allows 128/);
  const flat = { ...WEBGPU_DEFAULT_LIMITS, maxComputeWorkgroupsPerDimension: 3 };
  assert.equal(chooseMatmulVariant(flat, { M: 300, N: 300, K: 8 }).name, 'tuned', 'the 3×3 grid of 128-tiles fits, 5×5 of 64 does not');
  assert.throws(() => chooseMatmulVariant(flat, { M: 8, N: 8, K: 8, batch: 4 }), /grid/);
});

test('vec4 alignment rules name the dimension at fault', () => {
  assert.equal(vec4Misalignment({ M: 3, N: 8, K: 12 }), null, 'NN needs K and N');
  assert.match(vec4Misalignment({ M: 3, N: 8, K: 13 }) ?? '', /K \(A is stored \[M, K\]\) = 13/);
  assert.match(vec4Misalignment({ M: 3, N: 8, K: 12, transA: true }) ?? '', /M \(A is stored \[K, M\]\) = 3/);
  assert.equal(vec4Misalignment({ M: 4, N: 9, K: 12, transB: true }), null, 'NT needs only K');
  assert.match(vec4Misalignment({ M: 4, N: 8, K: 12, batch: 2, strideB: 6 }) ?? '', /strideB = 6/);
  assert.equal(paddedWork(MATMUL_VARIANTS.tuned, { M: 1, N: 1, K: 1 }), 128 * 128 * 8);
});

test('matmul rejects bad shapes, short buffers and impossible variants with the limit in the message', async () => {
  const device = await testDevice();
  const A = createStorage(device, 4 * 6);
  assert.throws(() => matmulLaunch(device, { M: 0, N: 1, K: 1 }, { a: A, b: A, c: A }), /M must be an integer >= 1, got 0/);
  assert.throws(() => matmulLaunch(device, { M: 2, N: 2, K: 4 }, { a: A, b: A, c: A }), /matmul A needs 32 bytes, its binding has 24/);
  assert.throws(() => matmulLaunch(device, { M: 1, N: 1, K: 1, batch: 0 }, { a: A, b: A, c: A }), /batch must be an integer >= 1, got 0/);
  assert.throws(() => matmulLaunch(device, { M: 1, N: 2, K: 1, batch: 2, strideC: 1 }, { a: A, b: A, c: A }), /strideC 1 would overlap/);
  assert.throws(() => matmulLaunch(device, { M: 1, N: 1, K: 1, batch: 7 }, { a: A, b: A, c: A }), /matmul A needs 28 bytes/);
  assert.throws(
    () => matmulLaunch(device, { M: 1, N: 1, K: 3 }, { a: A, b: A, c: A }, { variant: 'tuned' }),
    /variant "tuned" cannot run 1×1×3: vec4 loads need multiples of 4: K \(A is stored \[M, K\]\) = 3, N \(B is stored \[K, N\]\) = 1/,
  );
  assert.equal(matmulVariantSupport(MATMUL_VARIANTS['tuned-scalar'], device.limits, { M: 1, N: 1, K: 3 }), null);
  A.destroy();
});
