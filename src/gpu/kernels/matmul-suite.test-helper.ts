// The one correctness suite every matmul variant runs (hono style: one suite, every implementation).
// Each *.test.ts calls matmulSuite(name) for its variant. Against the float64 CPU reference, on fresh
// random inputs, outputs poisoned with NaN first:
//   - all four transpose forms (NN, NT, TN, TT) over sizes that are 1, primes and non-multiples of
//     every tile (64×64×16 and 128×128×8), plus shapes aligned for vec4 loads in some or all forms;
//   - accumulate (C += …) in one form (the accumulate path is the same code for every form; one form
//     keeps SwiftShader compile time down, ~1.5 s per pipeline);
//   - batched products with a shared (stride 0) operand and padded strides, whose gaps between the
//     entries of C must stay untouched, in all four forms.
// A shape the variant cannot run (the vec4 variant needs some dimensions to be multiples of 4) is
// skipped with the variant's own reason, printed as a test diagnostic; each form must still run at
// least MIN_RUN shapes, so a variant cannot pass by skipping.
// Bound: the classic dot-product forward error |fl(Σ) − Σ| <= γ_K · Σ|a·b| with γ_K ≈ K·u, u = 2^-24;
// we allow (K+1)·2^-23 · (Σ|a·b| + |c|), i.e. twice that, to cover any summation order and FMA or not.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { Rng } from '../../util/rng';
import { createStorage } from '../buffers';
import { testDevice, poisoned, run, readF32, assertClose } from '../gpu.test-helper';
import {
  MATMUL_VARIANTS,
  matmulCpu,
  matmulElements,
  matmulLaunch,
  matmulLaunches,
  matmulSplit,
  matmulVariantSupport,
  resolveMatmulShape,
  splitScratchBytes,
  type MatmulShape,
  type MatmulVariantName,
} from './matmul';

/** [M, N, K]. */
export const MATMUL_SUITE_SHAPES: readonly (readonly [number, number, number])[] = [
  // odd: 1, primes, non-multiples of both tiles
  [1, 1, 1],
  [1, 7, 3],
  [13, 11, 5],
  [67, 70, 65],
  [64, 64, 16],
  [5, 129, 33],
  [130, 3, 17],
  // multiples of 4 in some or all dimensions (the vec4 path), ragged against the 128×128×8 tile
  [4, 4, 4],
  [131, 68, 20],
  [12, 260, 36],
  [132, 133, 12],
  [136, 68, 9],
  [129, 128, 132],
];

/** Every form must run at least this many shapes. */
const MIN_RUN = 4;

const FORMS = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
] as const;

const formName = (transA: boolean, transB: boolean) => `${transA ? 'T' : 'N'}${transB ? 'T' : 'N'}`;

/** (K+1)·2^-23·(Σ|a·b| + |c|) per element of C. */
function bound(s: MatmulShape, a: Float32Array, b: Float32Array, c?: Float32Array): (i: number) => number {
  const abs = matmulCpu(s, a.map(Math.abs), b.map(Math.abs), c?.map(Math.abs));
  return (i) => (s.K + 1) * 2 ** -23 * abs[i];
}

/** Indices of C that belong to some batch entry (the rest are gaps between padded entries). */
function insideEntries(shape: MatmulShape): Set<number> {
  const s = resolveMatmulShape(shape);
  const inside = new Set<number>();
  for (let e = 0; e < s.batch; e++) for (let i = 0; i < s.M * s.N; i++) inside.add(e * s.strideC + i);
  return inside;
}

/**
 * Runs one product on the GPU and checks it: every entry of C within the bound of the CPU reference,
 * every gap between entries unchanged. Returns false (after t.diagnostic) if the variant refuses it.
 */
async function checkProduct(
  t: TestContext,
  variant: MatmulVariantName,
  shape: MatmulShape,
  rng: Rng,
  label: string,
  splits = 1,
): Promise<boolean> {
  const device = await testDevice();
  const split = matmulSplit(MATMUL_VARIANTS[variant], shape, splits);
  const why = matmulVariantSupport(MATMUL_VARIANTS[variant], device.limits, shape, split);
  if (why) {
    t.diagnostic(`skipped ${label}: ${why}`);
    return false;
  }
  const s = resolveMatmulShape(shape);
  const n = matmulElements(s);
  const a = rng.uniformArray(n.a);
  const b = rng.uniformArray(n.b);
  const c0 = s.accumulate ? rng.uniformArray(n.c) : new Float32Array(n.c).fill(NaN);
  const A = createStorage(device, a);
  const B = createStorage(device, b);
  const C = s.accumulate ? createStorage(device, c0) : poisoned(device, n.c);
  // Split K: the partials go through a NaN-poisoned scratch, so a partial left unwritten fails too.
  const S = splits > 1 ? poisoned(device, splitScratchBytes(s, split) / 4, 'scratch') : undefined;
  try {
    const launches = S
      ? matmulLaunches(device, s, { a: A, b: B, c: C, scratch: S }, { variant, splits })
      : [matmulLaunch(device, s, { a: A, b: B, c: C }, { variant })];
    assert.equal(launches.length, split.splits > 1 ? 2 : 1, `${variant} ${label}: launches`);
    await run(device, launches);
    const got = await readF32(device, C, n.c);
    const want = matmulCpu(s, a, b, s.accumulate ? c0 : undefined);
    const inside = insideEntries(s);
    const bnd = bound(s, a, b, s.accumulate ? c0 : undefined);
    const idx = [...inside].sort((x, y) => x - y);
    assertClose(
      `${variant} ${label}`,
      idx.map((i) => got[i]),
      idx.map((i) => want[i]),
      (j) => bnd(idx[j]),
    );
    for (let i = 0; i < n.c; i++) {
      if (inside.has(i)) continue;
      assert.ok(
        Object.is(got[i], c0[i]),
        `${variant} ${label}: gap element ${i} of C was written (${got[i]}, was ${c0[i]})`,
      );
    }
  } finally {
    [A, B, C, S].forEach((x) => x?.destroy());
  }
  return true;
}

export interface MatmulSuiteOptions {
  /**
   * Split K into this many chunks (matmulLaunches with a NaN-poisoned scratch; K shorter than that
   * splits less). Each test then also requires that at least MIN_RUN of its products really split.
   */
  splits?: number;
}

/** Registers the shared matmul tests for one variant (optionally split along K). */
export function matmulSuite(variant: MatmulVariantName, seed: number, opts: MatmulSuiteOptions = {}): void {
  const splits = opts.splits ?? 1;
  const name = splits > 1 ? `${variant}, ${splits} K-splits` : variant;
  const v = MATMUL_VARIANTS[variant];
  /** Runs one product; counts it, and counts it as split if it was. */
  const counter = () => {
    const n = { ran: 0, split: 0 };
    const check = async (t: TestContext, shape: MatmulShape, rng: Rng, label: string) => {
      if (await checkProduct(t, variant, shape, rng, label, splits)) {
        n.ran++;
        if (matmulSplit(v, shape, splits).splits > 1) n.split++;
      }
    };
    const verify = (what: string, minRun: number) => {
      assert.ok(n.ran >= minRun, `${name} ${what}: only ${n.ran} shapes ran (need ${minRun})`);
      if (splits > 1)
        assert.ok(n.split >= MIN_RUN, `${name} ${what}: only ${n.split} products were split (need ${MIN_RUN})`);
    };
    return { check, verify };
  };

  for (const [transA, transB] of FORMS) {
    const form = formName(transA, transB);
    test(`matmul[${name}] ${form} matches the CPU reference (sizes 1, primes, ragged tiles)`, async (t) => {
      const rng = new Rng(seed + (transA ? 2 : 0) + (transB ? 1 : 0));
      const c = counter();
      for (const [M, N, K] of MATMUL_SUITE_SHAPES)
        await c.check(t, { M, N, K, transA, transB }, rng, `${form} ${M}x${N}x${K}`);
      c.verify(form, MIN_RUN);
    });
  }

  test(`matmul[${name}] accumulate adds into C (TN form)`, async (t) => {
    const rng = new Rng(seed + 7);
    const c = counter();
    for (const [M, N, K] of MATMUL_SUITE_SHAPES) {
      await c.check(t, { M, N, K, transA: true, transB: false, accumulate: true }, rng, `TN C+= ${M}x${N}x${K}`);
    }
    c.verify('accumulate', MIN_RUN);
  });

  test(`matmul[${name}] batched: shared operand, padded strides, gaps untouched, every form`, async (t) => {
    const rng = new Rng(seed + 11);
    const c = counter();
    for (const [transA, transB] of FORMS) {
      const form = formName(transA, transB);
      // vec4-friendly: one B for every entry (strideB 0), A padded by 4, C padded by 5 (gaps).
      const aligned: MatmulShape = {
        M: 12,
        N: 8,
        K: 20,
        transA,
        transB,
        batch: 3,
        strideA: 12 * 20 + 4,
        strideB: 0,
        strideC: 12 * 8 + 5,
      };
      await c.check(t, aligned, rng, `${form} 3×12x8x20 strides ${aligned.strideA}/0/${aligned.strideC}`);
      // odd sizes and odd strides (the vec4 variant refuses these).
      const odd: MatmulShape = {
        M: 7,
        N: 5,
        K: 3,
        transA,
        transB,
        batch: 4,
        strideA: 7 * 3 + 2,
        strideB: 5 * 3 + 1,
        strideC: 7 * 5 + 1,
      };
      await c.check(t, odd, rng, `${form} 4×7x5x3 strides 23/16/36`);
      // packed (default strides), more entries than the tile has rows
      const packed: MatmulShape = { M: 4, N: 4, K: 8, transA, transB, batch: 37 };
      await c.check(t, packed, rng, `${form} 37×4x4x8 packed`);
    }
    const acc: MatmulShape = {
      M: 12,
      N: 8,
      K: 20,
      transA: true,
      transB: false,
      accumulate: true,
      batch: 2,
      strideC: 12 * 8 + 3,
    };
    await c.check(t, acc, rng, `TN C+= 2×12x8x20`);
    c.verify('batched', 9);
  });
}
