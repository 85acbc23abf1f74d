// The GPT specification: layout against nanoGPT's module structure, parameter and FLOP counts
// against independent derivations (and GPT-2 small's published size), validation, and the
// statistics of the seeded GPT-2 init.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  gptParamSpecs,
  gptParamCount,
  gptParamViews,
  gptFlopsPerToken,
  gptInit,
  gptInitStd,
  gptLinears,
  gptStateDictKey,
  isLowRankBlock,
  validateGptConfig,
  type GptConfig,
} from './gpt-spec';

const small: GptConfig = { vocab: 11, context: 5, layers: 2, heads: 2, width: 8, tiedEmbeddings: false };
const gpt2: GptConfig = { vocab: 50257, context: 1024, layers: 12, heads: 12, width: 768, tiedEmbeddings: true };

test('layout follows nanoGPT: names, PyTorch shapes, state_dict order, contiguous offsets', () => {
  const specs = gptParamSpecs(small);
  const C = 8;
  const block = (i: number): [string, number[]][] => [
    [`h.${i}.ln_1.weight`, [C]],
    [`h.${i}.ln_1.bias`, [C]],
    [`h.${i}.attn.c_attn.weight`, [3 * C, C]],
    [`h.${i}.attn.c_attn.bias`, [3 * C]],
    [`h.${i}.attn.c_proj.weight`, [C, C]],
    [`h.${i}.attn.c_proj.bias`, [C]],
    [`h.${i}.ln_2.weight`, [C]],
    [`h.${i}.ln_2.bias`, [C]],
    [`h.${i}.mlp.c_fc.weight`, [4 * C, C]],
    [`h.${i}.mlp.c_fc.bias`, [4 * C]],
    [`h.${i}.mlp.c_proj.weight`, [C, 4 * C]],
    [`h.${i}.mlp.c_proj.bias`, [C]],
  ];
  const want: [string, number[]][] = [
    ['wte.weight', [11, C]],
    ['wpe.weight', [5, C]],
    ...block(0),
    ...block(1),
    ['ln_f.weight', [C]],
    ['ln_f.bias', [C]],
    ['lm_head.weight', [11, C]],
  ];
  assert.deepEqual(
    specs.map((s) => [s.name, s.shape]),
    want,
  );
  let offset = 0;
  for (const s of specs) {
    assert.equal(s.offset, offset, s.name);
    assert.equal(
      s.size,
      s.shape.reduce((a, b) => a * b, 1),
      s.name,
    );
    offset += s.size;
  }
  assert.equal(gptParamCount(small), offset);
  assert.ok(
    !gptParamSpecs({ ...small, tiedEmbeddings: true }).some((s) => s.name === 'lm_head.weight'),
    'tied: no lm_head',
  );
  assert.equal(gptStateDictKey('h.0.attn.c_attn.weight'), 'transformer.h.0.attn.c_attn.weight');
  assert.equal(gptStateDictKey('lm_head.weight'), 'lm_head.weight');
});

test('parameter count: V·C + T·C + L·(12C² + 13C) + 2C (+ V·C untied); GPT-2 small is 124,439,808', () => {
  for (const cfg of [
    small,
    { ...small, tiedEmbeddings: true },
    { vocab: 65, context: 64, layers: 3, heads: 4, width: 32, tiedEmbeddings: true },
  ]) {
    const { vocab: V, context: T, layers: L, width: C } = cfg;
    // Per block: c_attn 3C²+3C, c_proj C²+C, c_fc 4C²+4C, mlp c_proj 4C²+C, two layernorms 4C.
    const want = V * C + T * C + L * (12 * C * C + 13 * C) + 2 * C + (cfg.tiedEmbeddings ? 0 : V * C);
    assert.equal(gptParamCount(cfg), want, JSON.stringify(cfg));
  }
  // The size HuggingFace's and nanoGPT's GPT-2 (124M) report (nanoGPT prints 123.65M: without wpe).
  assert.equal(gptParamCount(gpt2), 124_439_808);
  assert.equal(gptParamCount(gpt2) - 1024 * 768, 123_653_376);
});

test('low-rank layout: middle blocks get weight_u [out, r] and weight_v [in, r]; first and last stay full', () => {
  const cfg: GptConfig = { ...small, layers: 4, lowRank: { rank: 3 } };
  assert.deepEqual(
    [0, 1, 2, 3].map((i) => isLowRankBlock(cfg, i)),
    [false, true, true, false],
  );
  const all: GptConfig = { ...cfg, lowRank: { rank: 3, layers: 'all' } };
  assert.deepEqual(
    [0, 1, 2, 3].map((i) => isLowRankBlock(all, i)),
    [true, true, true, true],
  );
  const shapes = new Map(gptParamSpecs(cfg).map((s) => [s.name, s.shape]));
  assert.deepEqual(shapes.get('h.1.attn.c_attn.weight_u'), [24, 3]);
  assert.deepEqual(shapes.get('h.1.attn.c_attn.weight_v'), [8, 3]);
  assert.deepEqual(shapes.get('h.2.mlp.c_proj.weight_u'), [8, 3]);
  assert.deepEqual(shapes.get('h.2.mlp.c_proj.weight_v'), [32, 3]);
  assert.deepEqual(shapes.get('h.1.mlp.c_fc.bias'), [32]);
  assert.ok(!shapes.has('h.1.attn.c_attn.weight'));
  assert.deepEqual(shapes.get('h.0.attn.c_attn.weight'), [24, 8]);
  assert.deepEqual(shapes.get('h.3.mlp.c_fc.weight'), [32, 8]);
  assert.ok(!shapes.has('h.0.attn.c_attn.weight_u'));
  // Each factorised weight trades out·in for r·(out + in).
  const full = { ...cfg, lowRank: undefined };
  const saved = gptLinears(cfg)
    .filter((l) => l.rank > 0)
    .reduce((a, l) => a + l.out * l.in - 3 * (l.out + l.in), 0);
  assert.equal(gptParamCount(full) - gptParamCount(cfg), saved);
});

test('FLOPs: forward = nanoGPT estimate_mfu / 3 less biases and layernorms; low rank saves 2 per weight removed', () => {
  for (const cfg of [gpt2, { ...small, tiedEmbeddings: true }]) {
    const specs = gptParamSpecs(cfg);
    // nanoGPT: flops_per_token = 6N + 12·L·H·Q·T (forward + backward) with N = parameters without wpe.
    const N = gptParamCount(cfg) - cfg.context * cfg.width;
    const nanoForward = (6 * N + 12 * cfg.layers * cfg.width * cfg.context) / 3;
    // We count only matmul multiply-adds, so 1-D tensors (biases, layernorm) are not in our count.
    const vectors = specs.filter((s) => s.shape.length === 1).reduce((a, s) => a + s.size, 0);
    assert.equal(gptFlopsPerToken(cfg), nanoForward - 2 * vectors, JSON.stringify(cfg));
  }
  // Untied: the lm_head is the matmul; the wte lookup is free, so the count equals the tied one.
  assert.equal(gptFlopsPerToken(small), gptFlopsPerToken({ ...small, tiedEmbeddings: true }));
  // Low-rank: U·(Vᵀx) costs r·(out + in) multiply-adds, one per stored weight.
  const lr: GptConfig = { ...small, layers: 3, lowRank: { rank: 2 } };
  const full: GptConfig = { ...small, layers: 3 };
  assert.equal(gptFlopsPerToken(full) - gptFlopsPerToken(lr), 2 * (gptParamCount(full) - gptParamCount(lr)));
  // Attention grows linearly with the sequence length: 4·L·C per extra position.
  assert.equal(gptFlopsPerToken(full, 5) - gptFlopsPerToken(full, 2), 4 * 3 * 8 * 3);
  assert.throws(() => gptFlopsPerToken(full, 6), /seq must be an integer in \[1, 5\]/);
});

test('validation names the field and its limit', () => {
  const bad: [Partial<GptConfig> & Record<string, unknown>, RegExp][] = [
    [{ vocab: 1 }, /model.vocab must be an integer in \[2, 65536\], got 1/],
    [{ context: 0 }, /model.context must be an integer in \[1, 4096\], got 0/],
    [{ layers: 2.5 }, /model.layers must be an integer in \[1, 96\], got 2.5/],
    [{ heads: 0 }, /model.heads must be an integer/],
    [{ width: 9000 }, /model.width must be an integer in \[1, 8192\], got 9000/],
    [{ heads: 3 }, /model.width \(8\) must be divisible by model.heads \(3\)/],
    [{ tiedEmbeddings: 'yes' as unknown as boolean }, /model.tiedEmbeddings must be true or false, got "yes"/],
    [{ lowRank: { rank: 0, layers: 'all' } }, /model.lowRank.rank must be an integer in \[1, 8\] \(the width\), got 0/],
    [{ lowRank: { rank: 9, layers: 'all' } }, /model.lowRank.rank must be an integer in \[1, 8\]/],
    [{ lowRank: { rank: 2, layers: 'some' as 'all' } }, /model.lowRank.layers must be 'middle' or 'all', got "some"/],
    [
      { lowRank: { rank: 2 } },
      /model.lowRank.layers 'middle' keeps the first and last blocks full rank, so it needs model.layers ≥ 3, got 2/,
    ],
  ];
  for (const [patch, re] of bad) {
    assert.throws(() => validateGptConfig({ ...small, ...patch }), re, JSON.stringify(patch));
  }
  assert.throws(() => gptParamSpecs({ ...small, heads: 3 }), RangeError);
  validateGptConfig(small);
  validateGptConfig({ ...small, lowRank: { rank: 8, layers: 'all' } });
});

/** Sample standard deviation of pooled values. */
function std(parts: ArrayLike<number>[]): number {
  let n = 0,
    s = 0,
    s2 = 0;
  for (const p of parts)
    for (let i = 0; i < p.length; i++) {
      n++;
      s += p[i];
      s2 += p[i] * p[i];
    }
  return Math.sqrt(s2 / n - (s / n) ** 2);
}

test('gptInit: GPT-2 statistics (0.02, c_proj 0.02/sqrt(2L)), zero biases, unit layernorm, seeded', () => {
  const cfg: GptConfig = { vocab: 97, context: 32, layers: 4, heads: 4, width: 64, tiedEmbeddings: false };
  const p = gptInit(cfg, 7);
  assert.deepEqual(gptInit(cfg, 7), p, 'same seed, same weights');
  assert.notDeepEqual(gptInit(cfg, 8), p, 'another seed, other weights');
  const v = gptParamViews(cfg, p);
  const group = (re: RegExp) => [...v].filter(([n]) => re.test(n)).map(([, a]) => a);
  // n ≥ 2000 Gaussian samples per group: the sample std is within 5/sqrt(2n) ≤ 8% of σ (5 sigma).
  const checks: [RegExp, number][] = [
    [/^wte\.weight$/, 0.02],
    [/^wpe\.weight$/, 0.02],
    [/^lm_head\.weight$/, 0.02],
    [/c_attn\.weight$/, 0.02],
    [/c_fc\.weight$/, 0.02],
    [/c_proj\.weight$/, 0.02 / Math.sqrt(8)],
  ];
  for (const [re, sigma] of checks) {
    const parts = group(re);
    const n = parts.reduce((a, x) => a + x.length, 0);
    assert.ok(
      n >= 2000 && Math.abs(std(parts) / sigma - 1) <= 5 / Math.sqrt(2 * n),
      `${re}: std ${std(parts)} vs ${sigma} (n ${n})`,
    );
  }
  for (const a of group(/\.bias$/)) assert.ok(a.every((x) => x === 0));
  for (const a of group(/ln_(1|2|f)\.weight$/)) assert.ok(a.every((x) => x === 1));
  assert.equal(gptInitStd(cfg, 'h.0.mlp.c_proj'), 0.02 / Math.sqrt(8));
});

test('gptInit low rank: U·Vᵀ has the full-rank init’s scale', () => {
  const cfg: GptConfig = {
    vocab: 13,
    context: 4,
    layers: 4,
    heads: 4,
    width: 64,
    tiedEmbeddings: true,
    lowRank: { rank: 8, layers: 'all' },
  };
  const v = gptParamViews(cfg, gptInit(cfg, 11));
  for (const [kind, sigma] of [
    ['c_attn', 0.02],
    ['c_fc', 0.02],
    ['c_proj', 0.02 / Math.sqrt(8)],
  ] as const) {
    const products: Float64Array[] = [];
    for (const l of gptLinears(cfg).filter((x) => x.name.endsWith(kind))) {
      const U = v.get(`${l.name}.weight_u`)!,
        V = v.get(`${l.name}.weight_v`)!;
      const W = new Float64Array(l.out * l.in);
      for (let i = 0; i < l.out; i++)
        for (let j = 0; j < l.in; j++) {
          let x = 0;
          for (let c = 0; c < l.rank; c++) x += U[i * l.rank + c] * V[j * l.rank + c];
          W[i * l.in + j] = x;
        }
      products.push(W);
    }
    // The mean square of U·Vᵀ fluctuates through the factors' column norms: relative std about
    // sqrt((2/out + 2/in)/r) ≈ 9% per 64-wide matrix, pooled over ≥ 4 matrices ≈ 5% (of σ², so
    // ≈ 2.5% of σ); 15% on σ is about 5 of those standard deviations.
    const s = std(products);
    if (process.env.STARLING_PRINT_ERRORS === '1') console.log(`low-rank init ${kind}: std ratio ${s / sigma}`);
    assert.ok(Math.abs(s / sigma - 1) <= 0.15, `${kind}: std of U·Vᵀ ${s} vs ${sigma}`);
  }
});
