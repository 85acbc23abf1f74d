// Low-rank factorisation, stable rank and the Pufferfish conversion of a GPT, checked on matrices with
// a known singular spectrum (so expected errors come from the construction, not from our SVD) and
// through the float64 GPT reference (loss before and after the switch).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../util/rng';
import { withSpectrum, randomMatrix } from './svd.test-helper';
import {
  toLowRank,
  stableRank,
  cuttlefishRank,
  convertToLowRank,
  gptCuttlefishRank,
  gptStableRanks,
  frobeniusSq,
} from './lowrank';
import { gptParamCount, gptParamSpecs, gptParamViews, gptLinears, type GptConfig } from './gpt-spec';
import { gptForwardBackward, gptLoss } from './gpt-cpu';

const sumSq = (a: number[]) => a.reduce((s, x) => s + x * x, 0);

/** U [out, r]·V [in, r]ᵀ. */
function product(U: ArrayLike<number>, V: ArrayLike<number>, out: number, inn: number, r: number): Float64Array {
  const W = new Float64Array(out * inn);
  for (let i = 0; i < out; i++)
    for (let j = 0; j < inn; j++) {
      let x = 0;
      for (let c = 0; c < r; c++) x += U[i * r + c] * V[j * r + c];
      W[i * inn + j] = x;
    }
  return W;
}

/** Gram matrix FᵀF of F [rows, r]. */
function gram(F: Float64Array, rows: number, r: number): number[][] {
  return Array.from({ length: r }, (_, a) =>
    Array.from({ length: r }, (_, b) => {
      let x = 0;
      for (let i = 0; i < rows; i++) x += F[i * r + a] * F[i * r + b];
      return x;
    }),
  );
}

// Double precision throughout; errors are rounding of O(k) dot products: 1e-12 relative is ample.
const TOL = 1e-12;

test('toLowRank: ‖W − U·Vᵀ‖² is the discarded energy Σ_{i>r} s_i², and the factors are balanced (UᵀU = VᵀV = diag(s_r))', () => {
  const rng = new Rng(401);
  for (const [out, inn] of [
    [24, 8],
    [8, 32],
    [7, 7],
    [1, 5],
  ]) {
    const k = Math.min(out, inn);
    const s = Array.from({ length: k }, (_, i) => 2 * 0.7 ** i);
    const W = withSpectrum(out, inn, s, rng);
    for (let r = 1; r <= k; r++) {
      const f = toLowRank(W, out, inn, r);
      assert.equal(f.U.length, out * r);
      assert.equal(f.V.length, inn * r);
      const R = product(f.U, f.V, out, inn, r);
      const err2 = frobeniusSq(W.map((x, i) => x - R[i]));
      const best = sumSq(s.slice(r));
      const what = `${out}×${inn} r=${r}`;
      assert.ok(Math.abs(err2 - best) <= TOL * s[0] ** 2, `${what}: ‖W − UVᵀ‖² ${err2} vs ${best}`);
      assert.ok(Math.abs(f.discarded - best) <= TOL * s[0] ** 2, `reported discarded ${f.discarded} vs ${best}`);
      const gu = gram(f.U, out, r);
      const gv = gram(f.V, inn, r);
      for (let a = 0; a < r; a++)
        for (let b = 0; b < r; b++) {
          const want = a === b ? s[a] : 0;
          assert.ok(
            Math.abs(gu[a][b] - want) <= TOL * s[0] && Math.abs(gv[a][b] - want) <= TOL * s[0],
            `Gram (${a},${b})`,
          );
        }
    }
  }
  assert.throws(
    () => toLowRank(new Float64Array(6), 2, 3, 3),
    /rank r must be an integer in \[1, 2\] \(min of 2 × 3\), got 3/,
  );
});

test('stableRank: Σs²/s₁² on known spectra; k for equal σ, 1 for rank one, scale-invariant', () => {
  const rng = new Rng(402);
  const s = [3, 2, 1, 0.5, 0.1];
  const W = withSpectrum(11, 5, s, rng);
  const want = sumSq(s) / 9;
  // σ_max by power iteration is within ~1e-13 relative (svd.test.ts), so 1e-11 relative here.
  assert.ok(Math.abs(stableRank(W, 11, 5) - want) <= 1e-11 * want, `stable rank ${stableRank(W, 11, 5)} vs ${want}`);
  assert.ok(
    Math.abs(
      stableRank(
        W.map((x) => -7 * x),
        11,
        5,
      ) - want,
    ) <=
      1e-11 * want,
    'scale-invariant',
  );
  const eq = withSpectrum(6, 9, [1.5, 1.5, 1.5, 1.5, 1.5, 1.5], rng);
  assert.ok(Math.abs(stableRank(eq, 6, 9) - 6) <= 1e-11 * 6, `equal σ: ${stableRank(eq, 6, 9)}`);
  const x = randomMatrix(5, 1, rng),
    y = randomMatrix(1, 4, rng);
  assert.ok(Math.abs(stableRank(product(x, y, 5, 4, 1), 5, 4) - 1) <= 1e-11, 'rank one');
  assert.equal(stableRank(new Float64Array(6), 2, 3), 0);
});

test('cuttlefishRank: ⌊stable rank⌋, scaled by full/initial stable rank when that is given, clamped to [minRank, full]', () => {
  const rng = new Rng(403);
  // Stable rank 3.5 exactly: s = [2, 2, 2, sqrt(2)] → (12 + 2)/4.
  const W = withSpectrum(16, 8, [2, 2, 2, Math.SQRT2, 0, 0, 0, 0], rng);
  assert.ok(Math.abs(stableRank(W, 16, 8) - 3.5) < 1e-9);
  assert.equal(cuttlefishRank(W, 16, 8), 3);
  // A layer whose stable rank has not moved since init keeps full rank; one whose stable rank fell
  // to half of its initial value gets half the full rank.
  assert.equal(cuttlefishRank(W, 16, 8, { initStableRank: 3.5 }), 8);
  assert.equal(cuttlefishRank(W, 16, 8, { initStableRank: 6.2 }), 4);
  assert.equal(cuttlefishRank(W, 16, 8, { initStableRank: 1 }), 8, 'never above full rank');
  assert.equal(cuttlefishRank(W, 16, 8, { minRank: 5 }), 5, 'never below minRank');
  assert.throws(
    () => cuttlefishRank(W, 16, 8, { initStableRank: 0 }),
    /initStableRank must be a positive number, got 0/,
  );
});

/** Random GPT weights of order 0.5 (layernorm weights 1 ± 0.5), as in gpt-cpu.test.ts. */
function randomParams(cfg: GptConfig, rng: Rng): Float64Array {
  const p = new Float64Array(gptParamCount(cfg));
  for (const s of gptParamSpecs(cfg)) {
    const ln = /ln_(1|2|f)\.weight$/.test(s.name);
    for (let i = s.offset; i < s.offset + s.size; i++) p[i] = (ln ? 1 : 0) + 0.5 * (2 * rng.next() - 1);
  }
  return p;
}

const cfg: GptConfig = { vocab: 11, context: 5, layers: 3, heads: 2, width: 8, tiedEmbeddings: false };

function batch(rng: Rng, B: number) {
  const tokens = Int32Array.from({ length: B * cfg.context }, () => rng.int(cfg.vocab));
  const targets = Int32Array.from({ length: B * cfg.context }, () => rng.int(cfg.vocab));
  return { tokens, targets, B };
}

test('convertToLowRank at full rank (r = width) reproduces the loss; first and last blocks are copied bit for bit', () => {
  const rng = new Rng(411);
  const params = randomParams(cfg, rng);
  const { tokens, targets, B } = batch(rng, 3);
  const before = gptLoss(cfg, params, tokens, targets, B);
  const conv = convertToLowRank(cfg, params, cfg.width);
  assert.deepEqual(conv.cfg, { ...cfg, lowRank: { rank: 8, layers: 'middle' } });
  assert.ok(conv.params instanceof Float64Array);
  assert.equal(conv.params.length, gptParamCount(conv.cfg));
  assert.deepEqual(
    conv.truncation.map((t) => t.name),
    ['h.1.attn.c_attn.weight', 'h.1.attn.c_proj.weight', 'h.1.mlp.c_fc.weight', 'h.1.mlp.c_proj.weight'],
  );
  const after = gptLoss(conv.cfg, conv.params, tokens, targets, B);
  // U·Vᵀ equals W to ~1e-15 relative, so the loss agrees to rounding.
  assert.ok(Math.abs(after - before) <= 1e-12 * before, `loss ${before} → ${after}`);
  const P = gptParamViews(cfg, params);
  for (const [name, v] of gptParamViews(conv.cfg, conv.params)) {
    if (!name.startsWith('h.1.') || !name.includes('.weight_')) assert.deepEqual(v, P.get(name), name);
  }
  // Float32 weights: factors are rounded to f32 (2^-24 relative), moving the loss by ~1e-7 relative.
  const p32 = Float32Array.from(params);
  const c32 = convertToLowRank(cfg, p32, cfg.width);
  assert.ok(c32.params instanceof Float32Array);
  const l32 = gptLoss(cfg, p32, tokens, targets, B);
  assert.ok(Math.abs(gptLoss(c32.cfg, c32.params, tokens, targets, B) - l32) <= 1e-5 * l32);
});

test('convertToLowRank below full rank: fewer parameters, discarded energy as constructed, loss change as the first-order prediction', () => {
  const rng = new Rng(412);
  const params = randomParams(cfg, rng);
  const { tokens, targets, B } = batch(rng, 3);
  const r = 5;
  // Middle-block weights with a known spectrum whose tail (beyond r) is eps·(…): the truncation
  // removes exactly that tail.
  const run = (eps: number) => {
    const p = params.slice();
    const Pv = gptParamViews(cfg, p);
    const tails: number[] = [];
    for (const l of gptLinears(cfg).filter((x) => x.block === 1)) {
      const k = Math.min(l.out, l.in);
      const s = Array.from({ length: k }, (_, i) => (i < r ? 1.5 * 0.8 ** i : eps * (k - i)));
      Pv.get(`${l.name}.weight`)!.set(withSpectrum(l.out, l.in, s, new Rng(1000 + l.out * 7 + l.in)));
      tails.push(sumSq(s.slice(r)));
    }
    const before = gptForwardBackward(cfg, p, tokens, targets, B);
    const conv = convertToLowRank(cfg, p, r);
    const Q = gptParamViews(conv.cfg, conv.params);
    const G = gptParamViews(cfg, before.grads);
    let predicted = 0;
    conv.truncation.forEach((t, i) => {
      const l = gptLinears(cfg).find((x) => `${x.name}.weight` === t.name)!;
      const W = Pv.get(t.name)!;
      const R = product(Q.get(`${l.name}.weight_u`)!, Q.get(`${l.name}.weight_v`)!, l.out, l.in, r);
      const err2 = frobeniusSq(W.map((x, j) => x - R[j]));
      assert.ok(
        Math.abs(err2 - tails[i]) <= TOL * (1 + tails[i]),
        `${t.name}: ‖W − UVᵀ‖² ${err2} vs constructed tail ${tails[i]}`,
      );
      assert.ok(Math.abs(t.discarded - tails[i]) <= TOL * (1 + tails[i]), `${t.name}: reported discarded`);
      const g = G.get(t.name)!;
      for (let j = 0; j < W.length; j++) predicted += g[j] * (R[j] - W[j]);
    });
    const after = gptLoss(conv.cfg, conv.params, tokens, targets, B);
    assert.ok(Number.isFinite(after));
    assert.ok(gptParamCount(conv.cfg) < gptParamCount(cfg), 'rank 5 < 8·24/32 etc. must save parameters');
    return { actual: after - before.loss, predicted };
  };
  // Δloss = ⟨∇_W L, UVᵀ − W⟩ + O(‖UVᵀ − W‖²): the remainder shrinks like eps² while the prediction
  // shrinks like eps, so the relative remainder must fall by about 10× when eps falls 10×.
  const a = run(1e-3);
  const b = run(1e-4);
  const relA = Math.abs(a.actual - a.predicted) / Math.abs(a.predicted);
  const relB = Math.abs(b.actual - b.predicted) / Math.abs(b.predicted);
  assert.ok(Math.abs(a.predicted) > 1e-6, `prediction ${a.predicted} too small to test`);
  assert.ok(relA <= 0.05, `eps 1e-3: actual ${a.actual} vs predicted ${a.predicted}`);
  assert.ok(relB <= 0.2 * relA + 1e-7, `eps 1e-4: relative remainder ${relB} did not shrink from ${relA}`);
  if (process.env.STARLING_PRINT_ERRORS === '1')
    console.log(`first-order remainder: eps 1e-3 ${relA}, eps 1e-4 ${relB}; Δloss ${a.actual}, ${b.actual}`);
});

test('gptCuttlefishRank reports each factorised weight and picks the largest rank', () => {
  const rng = new Rng(421);
  const params = randomParams(cfg, rng);
  const init = gptStableRanks(cfg, params);
  assert.deepEqual(
    [...init.keys()],
    ['h.1.attn.c_attn.weight', 'h.1.attn.c_proj.weight', 'h.1.mlp.c_fc.weight', 'h.1.mlp.c_proj.weight'],
  );
  const P = gptParamViews(cfg, params);
  // After "training": c_fc collapses to stable rank ~2, the others keep theirs.
  P.get('h.1.mlp.c_fc.weight')!.set(withSpectrum(32, 8, [1, 1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], rng));
  const res = gptCuttlefishRank(cfg, params, { initStableRanks: init });
  const byName = new Map(res.perLayer.map((p) => [p.name, p]));
  assert.equal(byName.get('h.1.attn.c_proj.weight')!.rank, 8, 'unchanged stable rank → full rank');
  assert.ok(byName.get('h.1.mlp.c_fc.weight')!.rank < 8, 'collapsed layer gets a lower rank');
  assert.equal(res.rank, Math.max(...res.perLayer.map((p) => p.rank)));
  assert.equal(gptStableRanks(cfg, params, 'all').size, 12);
});

test('conversion input is checked', () => {
  const params = new Float64Array(gptParamCount(cfg));
  assert.throws(
    () => convertToLowRank(cfg, params, 9),
    /model.lowRank.rank must be an integer in \[1, 8\] \(the width\), got 9/,
  );
  assert.throws(
    () => convertToLowRank({ ...cfg, layers: 2 }, new Float64Array(gptParamCount({ ...cfg, layers: 2 })), 2),
    /needs model.layers ≥ 3, got 2/,
  );
  const low = convertToLowRank(cfg, params, 2);
  assert.throws(() => convertToLowRank(low.cfg, low.params, 2), /convertToLowRank needs a full-rank model/);
  assert.throws(() => convertToLowRank(cfg, params.subarray(1), 2), /expected \d+ parameters for this model/);
});
