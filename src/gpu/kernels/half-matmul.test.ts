// Matmul with f16 storage (packed B, optionally packed A), f32 accumulation. Fresh random non-zero
// inputs, sizes 1, primes and non-multiples of the 64×64×16 tile (odd K and M make packed rows straddle
// u32 words), every transpose form with B packed and with A and B packed, A packed alone, the switch
// off (both f32), accumulate, C poisoned with NaN first. Two checks per product:
//   1. against the float64 product of the f16-rounded operands (what the kernel stores): the bound is
//      the f32 matmul's, (K+1)·2^-23·(Σ_k|ã·b̃| + |c|) (the dot-product bound γ_K·Σ|ã·b̃|, doubled for
//      any summation order or FMA), because unpacking f16 → f32 is exact;
//   2. against the float64 product of the f32 inputs, the bound widened by what rounding to f16 costs:
//      |x̃ − x| <= δx = max(2^-11·|x|, 2^-25) per packed input (2^-25: f16 subnormals), so each term is off
//      by at most δa·|b| + |a|·δb + δa·δb, summed over k. This is the error f16 storage costs.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { Rng } from '../../util/rng';
import { createStorage } from '../buffers';
import { testDevice, poisoned, run, readF32, assertClose } from '../gpu.test-helper';
import { packHalf, unpackHalf } from './half';
import {
  halfMatmulBytes,
  halfMatmulCpu,
  halfMatmulLaunch,
  resolveHalfMatmulShape,
  type HalfMatmulShape,
} from './half-matmul';

/** [M, N, K]: 1, primes, ragged against the 64×64×16 tile, odd K (rows of [M,K] straddle words). */
const SHAPES: readonly (readonly [number, number, number])[] = [
  [1, 1, 1],
  [1, 7, 3],
  [13, 11, 5],
  [67, 70, 65],
  [64, 64, 16],
  [5, 129, 33],
  [130, 3, 17],
  [2, 3, 131],
];

const FORMS = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
] as const;

const formName = (s: HalfMatmulShape) => `${s.transA ? 'T' : 'N'}${s.transB ? 'T' : 'N'}`;
const storageName = (s: HalfMatmulShape) => {
  const r = resolveHalfMatmulShape(s);
  return `A ${r.halfA ? 'f16' : 'f32'}, B ${r.halfB ? 'f16' : 'f32'}`;
};

/** Worst error/bound of each check over the run, and the f16 cost relative to an f32 matmul's bound. */
const worst = { rounded: 0, inputs: 0, f16CostOverF32Bound: 0, f16CostRelative: 0 };

/** max(2^-11·|x|, 2^-25) for a packed operand (f16 rounding error), 0 for an f32 one. */
const roundingError = (x: Float32Array, half: boolean) =>
  x.map((v) => (half ? Math.max(2 ** -11 * Math.abs(v), 2 ** -25) : 0));

async function checkProduct(t: TestContext, shape: HalfMatmulShape, rng: Rng): Promise<void> {
  const device = await testDevice();
  const s = resolveHalfMatmulShape(shape);
  const label = `${formName(s)}${s.accumulate ? ' C+=' : ''} ${s.M}x${s.N}x${s.K} (${storageName(s)})`;
  const a = rng.uniformArray(s.M * s.K);
  const b = rng.uniformArray(s.K * s.N);
  const aStored = s.halfA ? packHalf(a) : a;
  const bStored = s.halfB ? packHalf(b) : b;
  const c0 = s.accumulate ? rng.uniformArray(s.M * s.N) : undefined;
  const A = createStorage(device, aStored);
  const B = createStorage(device, bStored);
  const C = c0 ? createStorage(device, c0) : poisoned(device, s.M * s.N);
  try {
    await run(device, [halfMatmulLaunch(device, s, { a: A, b: B, c: C })]);
    const got = await readF32(device, C, s.M * s.N);
    // f32 operands (halfA, halfB off): the float64 product of the values given.
    const plain: HalfMatmulShape = {
      M: s.M,
      N: s.N,
      K: s.K,
      transA: s.transA,
      transB: s.transB,
      accumulate: s.accumulate,
      halfA: false,
      halfB: false,
    };

    // 1. f16-rounded operands: the f32 accumulation bound.
    const want = halfMatmulCpu(s, aStored, bStored, c0);
    const aUsed = s.halfA ? unpackHalf(aStored, s.M * s.K) : a;
    const bUsed = s.halfB ? unpackHalf(bStored, s.K * s.N) : b;
    const mag = halfMatmulCpu(plain, aUsed.map(Math.abs), bUsed.map(Math.abs), c0?.map(Math.abs));
    const accBound = (i: number) => (s.K + 1) * 2 ** -23 * mag[i];
    worst.rounded = Math.max(
      worst.rounded,
      assertClose(`half_matmul ${label} vs f16-rounded operands`, got, want, accBound),
    );

    // 2. f32 inputs: plus the cost of rounding them to f16.
    const want32 = halfMatmulCpu(plain, a, b, c0);
    const da = roundingError(a, s.halfA);
    const db = roundingError(b, s.halfB);
    const absa = a.map(Math.abs);
    const absb = b.map(Math.abs);
    const noC = { ...plain, accumulate: false };
    const t1 = halfMatmulCpu(noC, da, absb);
    const t2 = halfMatmulCpu(noC, absa, db);
    const t3 = halfMatmulCpu(noC, da, db);
    const roundBound = (i: number) => t1[i] + t2[i] + t3[i];
    worst.inputs = Math.max(
      worst.inputs,
      assertClose(`half_matmul ${label} vs f32 inputs`, got, want32, (i) => accBound(i) + roundBound(i)),
    );
    if (s.halfA || s.halfB) {
      const abMag = halfMatmulCpu(noC, absa, absb);
      for (let i = 0; i < got.length; i++) {
        const err = Math.abs(got[i] - want32[i]);
        worst.f16CostOverF32Bound = Math.max(worst.f16CostOverF32Bound, err / accBound(i));
        worst.f16CostRelative = Math.max(worst.f16CostRelative, err / abMag[i] / 2 ** -11);
      }
    }
    t.diagnostic(`${label}: ok`);
  } finally {
    [A, B, C].forEach((x) => x.destroy());
  }
}

for (const [transA, transB] of FORMS) {
  const form = formName({ M: 1, N: 1, K: 1, transA, transB });
  test(`half_matmul ${form}: B f16 and A, B f16 match the CPU on f16-rounded operands and on f32 inputs`, async (t) => {
    const rng = new Rng(2600 + (transA ? 2 : 0) + (transB ? 1 : 0));
    for (const halfA of [false, true]) {
      for (const [M, N, K] of SHAPES) await checkProduct(t, { M, N, K, transA, transB, halfA, halfB: true }, rng);
    }
  });
}

test('half_matmul: A f16 alone, the switch off (both f32), and accumulate', async (t) => {
  const rng = new Rng(2610);
  for (const [M, N, K] of SHAPES) {
    await checkProduct(t, { M, N, K, halfA: true, halfB: false }, rng);
    await checkProduct(t, { M, N, K, transB: true, halfA: false, halfB: false }, rng);
    await checkProduct(t, { M, N, K, transA: true, accumulate: true, halfA: true, halfB: true }, rng);
    await checkProduct(t, { M, N, K, transB: true, accumulate: true }, rng);
  }
});

test('half_matmul runs on this device whatever its shader-f16; worst errors reported', async (t) => {
  const device = await testDevice();
  t.diagnostic(`device has shader-f16: ${device.features.has('shader-f16')} (the packed path needs only core WGSL)`);
  // Runs last in this file (node:test runs a file's tests in order): the products above filled `worst`.
  assert.ok(worst.rounded > 0 || worst.inputs > 0, 'no product ran');
  const msg =
    `worst error/bound: ${worst.rounded.toExponential(2)} vs f16-rounded ` +
    `operands, ${worst.inputs.toExponential(2)} vs f32 inputs; ` +
    `f16 storage cost: up to ${worst.f16CostOverF32Bound.toFixed(1)}× the f32 matmul bound, ` +
    `${worst.f16CostRelative.toFixed(3)}·2^-11·Σ|a·b| at worst`;
  t.diagnostic(msg);
  if (process.env.STARLING_PRINT_ERRORS) console.log(`[half_matmul] ${msg}`);
});

test('halfMatmulLaunch checks sizes, naming packed operands', async () => {
  const device = await testDevice();
  assert.deepEqual(
    halfMatmulBytes({ M: 3, N: 5, K: 7 }),
    { a: 84, b: 72, c: 60 },
    'B packed by default: ceil(35/2) words',
  );
  assert.deepEqual(halfMatmulBytes({ M: 3, N: 5, K: 7, halfA: true, halfB: false }), { a: 44, b: 140, c: 60 });
  const X = createStorage(device, 4 * 8);
  assert.throws(
    () => halfMatmulLaunch(device, { M: 0, N: 1, K: 1 }, { a: X, b: X, c: X }),
    /M must be an integer >= 1, got 0/,
  );
  assert.throws(
    () => halfMatmulLaunch(device, { M: 1, N: 17, K: 1 }, { a: X, b: X, c: createStorage(device, 68) }),
    /half_matmul B \(packed f16\) needs 36 bytes, its binding has 32/,
  );
  assert.throws(
    () => halfMatmulLaunch(device, { M: 9, N: 1, K: 1, halfA: true }, { a: X, b: X, c: X }),
    /half_matmul C needs 36 bytes/,
  );
  assert.throws(
    () => halfMatmulLaunch(device, { M: 9, N: 1, K: 1, halfB: false }, { a: X, b: X, c: X }),
    /half_matmul A \(f32\) needs 36 bytes/,
  );
  X.destroy();
});

test('halfMatmulCpu: a known product in every storage form (transposes, packed operands, accumulate)', () => {
  // [[1,2,3],[4,5,6]] · [[1,0.5],[-1,2],[0.25,-3]] = [[-0.25,-4.5],[0.5,-6]]
  const A = [1, 2, 3, 4, 5, 6];
  const At = [1, 4, 2, 5, 3, 6];
  const B = [1, 0.5, -1, 2, 0.25, -3];
  const Bt = [1, -1, 0.25, 0.5, 2, -3];
  const want = [-0.25, -4.5, 0.5, -6];
  for (const [transA, transB] of FORMS) {
    for (const [halfA, halfB] of FORMS) {
      const a = transA ? At : A;
      const b = transB ? Bt : B;
      const s = { M: 2, N: 2, K: 3, transA, transB, halfA, halfB };
      const got = halfMatmulCpu(s, halfA ? packHalf(a) : a, halfB ? packHalf(b) : b);
      assert.deepEqual([...got], want, JSON.stringify(s));
      const acc = halfMatmulCpu(
        { ...s, accumulate: true },
        halfA ? packHalf(a) : a,
        halfB ? packHalf(b) : b,
        [1, 1, 1, 1],
      );
      assert.deepEqual(
        [...acc],
        want.map((x) => x + 1),
      );
    }
  }
});
