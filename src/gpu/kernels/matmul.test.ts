// Matmul: the shared suite (matmul-suite.ts) on the simple variant, the variant table checked
// against the shaders, the selector and its cost model, split-K plans, and argument checking. The
// other variants run the same suite in matmul-tuned.test.ts, matmul-tuned-scalar.test.ts and
// matmul-direct*.test.ts (separate files run in parallel).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createStorage } from '../buffers';
import { shaderSource } from '../shaders';
import { testDevice } from '../gpu.test-helper';
import { Rng } from '../../util/rng';
import { poisoned, readF32, run } from '../gpu.test-helper';
import {
  MATMUL_VARIANTS,
  WEBGPU_DEFAULT_LIMITS,
  chooseMatmulVariant,
  matmulCost,
  matmulLaunch,
  matmulLaunches,
  matmulScratchBytes,
  matmulSplit,
  matmulVariantSupport,
  paddedWork,
  planMatmul,
  vec4Misalignment,
  type MatmulShape,
} from './matmul';
import { matmulSuite } from './matmul-suite.test-helper';

matmulSuite('simple', 1000);

test('the variant table matches each shader: workgroup size, tile sizes, workgroup storage', async () => {
  await testDevice(); // loads the shaders in Node
  const elementBytes: Record<string, number> = { f32: 4, vec4f: 16 };
  for (const v of Object.values(MATMUL_VARIANTS)) {
    const src = shaderSource(v.shader);
    const wg = new RegExp(`@workgroup_size\\((\\w+),\\s*(\\w+)\\)\\s*fn ${v.entry}\\(`).exec(src);
    assert.ok(wg, `${v.name}: no @workgroup_size before fn ${v.entry}`);
    // A size is a number, or an override the variant sets (and the shader declares).
    const size = (x: string) => {
      if (/^\d+$/.test(x)) return Number(x);
      assert.ok(new RegExp(`override ${x}: u32`).test(src), `${v.name}: ${x} is not an override of ${v.shader}`);
      assert.ok(v.overrides?.[x] !== undefined, `${v.name}: sets no value for the override ${x}`);
      return v.overrides[x];
    };
    assert.deepEqual([size(wg[1]), size(wg[2])], [...v.workgroup], `${v.name}: workgroup size`);
    const consts = Object.fromEntries(
      [...src.matchAll(/const (\w+): u32 = (\d+)u;/g)].map((m) => [m[1], Number(m[2])]),
    );
    if (v.shader === 'matmul_direct') {
      // Tile = workgroup × outputs per invocation: 8 rows (fixed in the shader), COLS columns.
      assert.deepEqual([...v.perThread], [8, v.overrides?.COLS], `${v.name}: outputs per invocation`);
      assert.ok(v.overrides?.COLS === 4 || v.overrides?.COLS === 8, `${v.name}: COLS must be 4 or 8`);
      assert.equal(v.tileK, 1, `${v.name}: no K tiling`);
      assert.ok(v.splitK && /fn matmul_splitk_reduce\(/.test(src), `${v.name}: split K`);
    } else {
      const tile = [consts.BM ?? consts.TM, consts.BN ?? consts.TN, consts.BK ?? consts.TK];
      assert.deepEqual(tile, [v.tileM, v.tileN, v.tileK], `${v.name}: tile`);
    }
    assert.equal(
      v.workgroup[0] * v.workgroup[1] * v.perThread[0] * v.perThread[1],
      v.tileM * v.tileN,
      `${v.name}: outputs per thread`,
    );
    let bytes = 0;
    for (const m of src.matchAll(/var<workgroup> \w+: array<(\w+), (\d+)>/g))
      bytes += elementBytes[m[1]] * Number(m[2]);
    assert.equal(bytes, v.workgroupStorageBytes, `${v.name}: workgroup storage`);
  }
});

test('the selector picks by estimated time: direct tiles for GPT-step shapes and squares, narrow or small tiles where they pad less', () => {
  const pick = (s: MatmulShape) => chooseMatmulVariant(WEBGPU_DEFAULT_LIMITS, s).name;
  // Full tiles: all direct variants tie on work; direct-64 (first) wins. The barrier kernels' fixed cost per workgroup
  // loses.
  for (const n of [128, 256, 512, 1024, 4096]) assert.equal(pick({ M: n, N: n, K: n }), 'direct-64', `${n}³`);
  for (const [transA, transB] of [
    [false, true],
    [true, false],
    [true, true],
  ]) {
    assert.equal(pick({ M: 768, N: 256, K: 1024, transA, transB }), 'direct-64');
  }
  assert.equal(pick({ M: 64, N: 64, K: 64 }), 'direct-32', 'one 64-tile would run on one core; four 32-tiles use both');
  assert.equal(pick({ M: 513, N: 513, K: 513 }), 'direct-32', 'a 32-tile pads 513 to 544, a 64-tile to 576');
  // The GPT step (rows 1024, width 64): forward and input gradients on 64-tiles, weight gradients
  // (K = 1024, 64 or 192 rows) on 32-tiles, rank-16 factors on the 64×16 tile.
  assert.equal(pick({ M: 1024, N: 192, K: 64, transB: true }), 'direct-64');
  assert.equal(pick({ M: 1024, N: 64, K: 256 }), 'direct-64');
  assert.equal(pick({ M: 64, N: 64, K: 1024, transA: true }), 'direct-32');
  assert.equal(pick({ M: 192, N: 64, K: 1024, transA: true }), 'direct-32');
  assert.equal(pick({ M: 1024, N: 65, K: 64, transB: true }), 'direct-32', '65 columns: 96 padded, not 128');
  assert.equal(pick({ M: 1024, N: 16, K: 64 }), 'direct-64x16');
  assert.equal(pick({ M: 256, N: 16, K: 1024, transA: true }), 'direct-64x16');
  assert.equal(pick({ M: 4096, N: 1, K: 4096 }), 'direct-64x16', 'a column vector');
  // The cost model: padded work / speed plus a fixed cost per workgroup, in rounds of 2 workgroups.
  const d64 = MATMUL_VARIANTS['direct-64'];
  assert.equal(
    matmulCost(d64, { M: 64, N: 64, K: 100 }),
    d64.workgroupCost + (64 * 64 * 100) / d64.speed,
    'one workgroup, one round',
  );
  assert.equal(
    matmulCost(d64, { M: 192, N: 64, K: 100 }),
    2 * matmulCost(d64, { M: 64, N: 64, K: 100 }),
    'three workgroups, two rounds',
  );
  const simple = MATMUL_VARIANTS.simple;
  assert.ok(
    matmulCost(simple, { M: 1024, N: 64, K: 64 }) > 4 * matmulCost(d64, { M: 1024, N: 64, K: 64 }),
    'barrier kernels lose thin products',
  );
  // Limits are data: shrink them and the variants that no longer fit drop out, with their reasons.
  const few = { ...WEBGPU_DEFAULT_LIMITS, maxComputeInvocationsPerWorkgroup: 32 };
  assert.equal(chooseMatmulVariant(few, { M: 512, N: 512, K: 512 }).name, 'direct-32', '16 invocations still fit');
  const tiny = { ...WEBGPU_DEFAULT_LIMITS, maxComputeInvocationsPerWorkgroup: 8 };
  assert.throws(
    () => chooseMatmulVariant(tiny, { M: 8, N: 8, K: 8 }),
    /simple: needs 256 invocations per workgroup, the device allows 8.*direct-32: needs 16 invocations/,
  );
  const flat = { ...WEBGPU_DEFAULT_LIMITS, maxComputeWorkgroupsPerDimension: 3 };
  assert.equal(
    chooseMatmulVariant(flat, { M: 300, N: 300, K: 8 }).name,
    'direct-128',
    'the 3×3 grid of 128-tiles fits, 5×5 of 64 does not',
  );
  assert.throws(() => chooseMatmulVariant(flat, { M: 8, N: 8, K: 8, batch: 4 }), /grid/);
});

test('split K: planned only with scratch, only where it pays, never more chunks than K has', () => {
  const L = WEBGPU_DEFAULT_LIMITS;
  const thin: MatmulShape = { M: 64, N: 16, K: 1024, transA: true }; // a rank-16 weight gradient
  const plan = planMatmul(L, thin, { scratchBytes: Infinity });
  assert.equal(plan.variant.name, 'direct-64x16');
  assert.equal(plan.splits, 2, 'one 64×16 tile: two halves of K keep both cores busy');
  assert.equal(plan.kChunk, 512);
  assert.equal(plan.scratchBytes, 4 * 2 * 64 * 16);
  assert.equal(matmulScratchBytes(L, thin), plan.scratchBytes);
  assert.equal(planMatmul(L, thin).splits, 1, 'no scratch: no split');
  assert.equal(planMatmul(L, thin, { scratchBytes: plan.scratchBytes - 4 }).splits, 1, 'too little scratch: no split');
  assert.ok(plan.cost < planMatmul(L, thin).cost);
  // Wide outputs or short K never split; neither do variants without split support.
  for (const s of [
    { M: 1024, N: 64, K: 64 },
    { M: 1024, N: 1024, K: 1024 },
    { M: 256, N: 64, K: 1024, transA: true },
  ]) {
    assert.equal(matmulScratchBytes(L, s), 0, `${s.M}×${s.N}×${s.K}`);
  }
  assert.match(
    matmulVariantSupport(MATMUL_VARIANTS.tuned, L, thin, matmulSplit(MATMUL_VARIANTS.tuned, thin, 2)) ?? '',
    /cannot split K/,
  );
  // Chunks: ceil(K / splits) rounded to the variant's K step; fewer chunks when K is short.
  assert.deepEqual(matmulSplit(MATMUL_VARIANTS['direct-64'], { M: 1, N: 1, K: 10 }, 3), { splits: 3, kChunk: 4 });
  assert.deepEqual(matmulSplit(MATMUL_VARIANTS['direct-64'], { M: 1, N: 1, K: 2 }, 5), { splits: 2, kChunk: 1 });
  assert.throws(() => matmulSplit(MATMUL_VARIANTS['direct-64'], thin, 0), /splits must be an integer >= 1/);
});

test('matmulLaunches: split into two launches with scratch, one without; deterministic; a split product is as exact as the bound', async () => {
  const device = await testDevice();
  const rng = new Rng(42);
  const shape: MatmulShape = { M: 64, N: 16, K: 1024, transA: true };
  const a = rng.uniformArray(64 * 1024);
  const b = rng.uniformArray(1024 * 16);
  const A = createStorage(device, a);
  const B = createStorage(device, b);
  const C = poisoned(device, 64 * 16);
  const C2 = poisoned(device, 64 * 16);
  const S = poisoned(device, matmulScratchBytes(device.limits, shape) / 4);
  try {
    assert.equal(matmulLaunches(device, shape, { a: A, b: B, c: C }).length, 1, 'no scratch');
    const split = matmulLaunches(device, shape, { a: A, b: B, c: C, scratch: S });
    assert.equal(split.length, 2);
    assert.match(split[0].label, /direct-64x16, 2 splits/);
    await run(device, split);
    await run(device, matmulLaunches(device, shape, { a: A, b: B, c: C2, scratch: S }));
    const got = await readF32(device, C, 64 * 16);
    const again = await readF32(device, C2, 64 * 16);
    assert.deepEqual(again, got, 'the same bits every run (partials added in a fixed order)');
    for (let i = 0; i < 64; i++) {
      for (let j = 0; j < 16; j++) {
        let want = 0;
        let mag = 0;
        for (let k = 0; k < 1024; k++) {
          want += a[k * 64 + i] * b[k * 16 + j];
          mag += Math.abs(a[k * 64 + i] * b[k * 16 + j]);
        }
        assert.ok(
          Math.abs(got[i * 16 + j] - want) <= 1025 * 2 ** -23 * mag,
          `C[${i}, ${j}] = ${got[i * 16 + j]}, want ${want}`,
        );
      }
    }
    // Forcing: splits without scratch, or on a variant that cannot split, say why.
    assert.throws(
      () => matmulLaunches(device, shape, { a: A, b: B, c: C }, { splits: 4 }),
      /with 4 splits cannot run 64×16×1024 transA: .*4 splits need 16384 bytes of scratch, 0 given/,
    );
    assert.throws(
      () => matmulLaunches(device, shape, { a: A, b: B, c: C, scratch: S }, { variant: 'simple', splits: 2 }),
      /variant "simple" with 2 splits cannot run 64×16×1024 transA: cannot split K/,
    );
  } finally {
    [A, B, C, C2, S].forEach((x) => x.destroy());
  }
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
  assert.throws(
    () => matmulLaunch(device, { M: 0, N: 1, K: 1 }, { a: A, b: A, c: A }),
    /M must be an integer >= 1, got 0/,
  );
  assert.throws(
    () => matmulLaunch(device, { M: 2, N: 2, K: 4 }, { a: A, b: A, c: A }),
    /matmul A needs 32 bytes, its binding has 24/,
  );
  assert.throws(
    () => matmulLaunch(device, { M: 1, N: 1, K: 1, batch: 0 }, { a: A, b: A, c: A }),
    /batch must be an integer >= 1, got 0/,
  );
  assert.throws(
    () => matmulLaunch(device, { M: 1, N: 2, K: 1, batch: 2, strideC: 1 }, { a: A, b: A, c: A }),
    /strideC 1 would overlap/,
  );
  assert.throws(
    () => matmulLaunch(device, { M: 1, N: 1, K: 1, batch: 7 }, { a: A, b: A, c: A }),
    /matmul A needs 28 bytes/,
  );
  assert.throws(
    () => matmulLaunch(device, { M: 1, N: 1, K: 3 }, { a: A, b: A, c: A }, { variant: 'tuned' }),
    /variant "tuned" cannot run 1×1×3: vec4 loads need multiples of 4: K \(A is stored \[M, K\]\) = 3, N \(B is stored \[K, N\]\) = 1/,
  );
  assert.equal(matmulVariantSupport(MATMUL_VARIANTS['tuned-scalar'], device.limits, { M: 1, N: 1, K: 3 }), null);
  A.destroy();
});
