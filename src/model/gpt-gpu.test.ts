// The GPU GPT against the float64 reference (gpt-cpu.ts, itself checked against finite differences
// and TensorFlow.js): loss and every parameter gradient, full rank and low rank, tied and untied,
// odd sizes; gradient clipping; AdamW steps; learning; and no buffer creation after the first step.
//
// Gradient bound: each gradient element is a float32 sum over N = B·T positions (weights) or over the
// width and vocabulary (activations), through 2–3 blocks of layernorm/attention whose own float32
// error is ~1e-6 relative. We allow 2e-5·(max|g| + |g|) per element (measured worst on SwiftShader:
// 4e-7·(max|g| + |g|), i.e. 0.02 of the bound); a missing or wrong backward term gives errors of order |g|.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../util/rng';
import { gptParamSpecs, gptParamCount, gptInit, type GptConfig } from './gpt-spec';
import { gptForwardBackward, gptLoss } from './gpt-cpu';
import { GptTrainer } from './gpt-gpu';
import { AdamWCpu } from '../optim/adamw-cpu';
import type { AdamWHyper } from '../optim/adamw';
import { gradNormCpu, clipScaleCpu } from '../gpu/kernels/gradnorm';
import { testDevice, assertClose } from '../gpu/gpu.test-helper';
import { countBufferCreations } from '../gpu/buffer-counter.test-helper';
import { encodeRound } from './trainer.test-helper';
import { roundToHalf } from '../gpu/kernels/half';

const PRINT = process.env.STARLING_PRINT_ERRORS === '1';
const GRAD_REL = 2e-5;

/** Weights of order 0.3 everywhere (layernorm weights 1 ± 0.3) so nothing is trivially zero. */
function randomParams(cfg: GptConfig, rng: Rng, scale = 0.3): Float32Array {
  const p = new Float32Array(gptParamCount(cfg));
  for (const s of gptParamSpecs(cfg)) {
    const isLnWeight = /ln_(1|2|f)\.weight$/.test(s.name);
    for (let i = s.offset; i < s.offset + s.size; i++) p[i] = (isLnWeight ? 1 : 0) + scale * (2 * rng.next() - 1);
  }
  return p;
}

function batchOf(cfg: GptConfig, B: number, rng: Rng) {
  const n = B * cfg.context;
  return {
    tokens: Int32Array.from({ length: n }, () => rng.int(cfg.vocab)),
    targets: Int32Array.from({ length: n }, () => rng.int(cfg.vocab)),
  };
}

function assertGradsClose(cfg: GptConfig, got: Float32Array, want: Float64Array, what: string): void {
  let worst = 0;
  for (const s of gptParamSpecs(cfg)) {
    const ref = want.subarray(s.offset, s.offset + s.size);
    const scale = Math.max(...Array.from(ref, Math.abs));
    assert.ok(scale > 0, `${what} ${s.name}: the reference gradient is all zeros, so this test could not fail`);
    const r = assertClose(
      `${what} ${s.name}`,
      got.subarray(s.offset, s.offset + s.size),
      ref,
      (i) => GRAD_REL * (scale + Math.abs(ref[i])),
    );
    worst = Math.max(worst, r);
  }
  if (PRINT) console.log(`${what}: worst error/bound ${worst.toFixed(3)}`);
}

const CASES: [string, GptConfig, number][] = [
  ['untied, 2 layers', { vocab: 13, context: 8, layers: 2, heads: 2, width: 16, tiedEmbeddings: false }, 3],
  [
    'tied, odd sizes (V 67, T 7, C 12, 3 heads), B 5',
    { vocab: 67, context: 7, layers: 2, heads: 3, width: 12, tiedEmbeddings: true },
    5,
  ],
  ['T 1, B 1', { vocab: 5, context: 1, layers: 1, heads: 1, width: 4, tiedEmbeddings: false }, 1],
  [
    'low rank middle block (3 layers, rank 3)',
    { vocab: 11, context: 9, layers: 3, heads: 2, width: 8, tiedEmbeddings: false, lowRank: { rank: 3 } },
    2,
  ],
  [
    'low rank all blocks, tied (rank 5, T 70 over the attention tile)',
    {
      vocab: 17,
      context: 70,
      layers: 2,
      heads: 2,
      width: 16,
      tiedEmbeddings: true,
      lowRank: { rank: 5, layers: 'all' },
    },
    2,
  ],
];

for (const [name, cfg, B] of CASES) {
  test(`GPT loss and every gradient match the float64 reference: ${name}`, async () => {
    const device = await testDevice();
    const rng = new Rng(500 + B + cfg.vocab);
    const trainer = await GptTrainer.create(device, cfg, B);
    assert.equal(trainer.paramCount, gptParamCount(cfg));
    const params = randomParams(cfg, rng);
    trainer.setParams(params);
    assert.deepEqual(await trainer.getParams(), params);
    const { tokens, targets } = batchOf(cfg, B, rng);
    const gpu = await trainer.forwardBackward(tokens, targets);
    const cpu = gptForwardBackward(cfg, params, tokens, targets, B);
    assert.ok(Math.abs(gpu.loss - cpu.loss) <= 1e-5 * cpu.loss, `loss GPU ${gpu.loss} vs CPU ${cpu.loss}`);
    assert.ok(Math.abs((await trainer.loss(tokens, targets)) - cpu.loss) <= 1e-5 * cpu.loss, 'forward-only loss');
    assertGradsClose(cfg, gpu.grads, cpu.grads, name);
    // Run twice: the backward must overwrite (not accumulate into) every gradient.
    const again = await trainer.forwardBackward(tokens, targets);
    assertGradsClose(cfg, again.grads, cpu.grads, `${name} (second pass)`);
    trainer.destroy();
  });
}

// f16 weight storage (halfWeights): the matmuls read binary16 copies of the weights. With untied
// embeddings every matmul weight is used only by matmuls, so the GPU must match the f64 reference run
// on f16-rounded weights within the same f32 bound as above; tied, wte is also the (f32) embedding
// table, and the difference from the unrounded reference is the cost of f16 storage itself.
function roundMatmulWeights(cfg: GptConfig, p: Float32Array): Float32Array {
  const out = Float32Array.from(p);
  for (const s of gptParamSpecs(cfg)) {
    const isMatmulWeight =
      /^(h\.\d+\.(attn|mlp)\.c_\w+\.weight(_u|_v)?|lm_head\.weight)$/.test(s.name) ||
      (cfg.tiedEmbeddings && s.name === 'wte.weight');
    if (isMatmulWeight) for (let i = s.offset; i < s.offset + s.size; i++) out[i] = roundToHalf(out[i]);
  }
  return out;
}

for (const [name, cfg, B] of [CASES[1], CASES[3]].map(
  ([n, c, b]) => [n, { ...c, tiedEmbeddings: false }, b] as const,
)) {
  test(`halfWeights: loss and every gradient match the f64 reference on f16-rounded weights: ${name}, untied`, async () => {
    const device = await testDevice();
    const rng = new Rng(900 + B);
    const trainer = await GptTrainer.create(device, cfg, B, { halfWeights: true });
    const params = randomParams(cfg, rng);
    trainer.setParams(params);
    assert.deepEqual(await trainer.getParams(), params, 'the f32 master weights are kept as given');
    const { tokens, targets } = batchOf(cfg, B, rng);
    const gpu = await trainer.forwardBackward(tokens, targets);
    const rounded = roundMatmulWeights(cfg, params);
    assert.notDeepEqual(rounded, params, 'rounding changed some weights, so this test can tell f16 from f32');
    const cpu = gptForwardBackward(cfg, rounded, tokens, targets, B);
    assert.ok(
      Math.abs(gpu.loss - cpu.loss) <= 1e-5 * cpu.loss,
      `loss GPU ${gpu.loss} vs CPU on rounded weights ${cpu.loss}`,
    );
    assertGradsClose(cfg, gpu.grads, cpu.grads, `${name} halfWeights`);
    trainer.destroy();
  });
}

test('halfWeights, tied: within the cost of f16 rounding of the f32 reference, and the copies follow AdamW', async () => {
  const device = await testDevice();
  const [, cfg, B] = CASES[1];
  const rng = new Rng(950);
  const params = randomParams(cfg, rng);
  const { tokens, targets } = batchOf(cfg, B, rng);
  const cpu = gptForwardBackward(cfg, params, tokens, targets, B);
  const trainer = await GptTrainer.create(device, cfg, B, { halfWeights: true });
  trainer.setParams(params);
  const gpu = await trainer.forwardBackward(tokens, targets);
  // Each weight is off by ≤ 2^-11 relative; through the network that moves the loss and each
  // gradient by ~1e-3 relative (measured ≤ 2e-4·(max|g| + |g|)). 2e-3 still fails on any missing term.
  assert.ok(Math.abs(gpu.loss - cpu.loss) <= 2e-3 * cpu.loss, `loss ${gpu.loss} vs f32 reference ${cpu.loss}`);
  for (const s of gptParamSpecs(cfg)) {
    const ref = cpu.grads.subarray(s.offset, s.offset + s.size);
    const scale = Math.max(...Array.from(ref, Math.abs));
    assertClose(
      `f16 cost ${s.name}`,
      gpu.grads.subarray(s.offset, s.offset + s.size),
      ref,
      (i) => 2e-3 * (scale + Math.abs(ref[i])),
    );
  }
  // After a step the f16 copies must hold the updated weights: the next loss equals the f64 loss of
  // the updated (rounded) weights.
  await trainer.step(tokens, targets, HP);
  const after = await trainer.getParams();
  const want = gptLoss(cfg, roundMatmulWeights(cfg, after), tokens, targets, B);
  const got = await trainer.loss(tokens, targets);
  // Tied: wte is rounded in the head but not in the embedding, so compare to the unrounded loss too.
  const wantF32 = gptLoss(cfg, after, tokens, targets, B);
  assert.ok(
    Math.abs(got - wantF32) <= 2e-3 * wantF32 && Math.abs(got - want) <= 2e-3 * want,
    `loss after a step ${got} vs ${want}/${wantF32}`,
  );
  assert.ok(Math.abs(got - gpu.loss) > 1e-4, 'the step changed the loss');
  trainer.destroy();
});

const HP: AdamWHyper = { lr: 0.01, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };

test('GPT AdamW steps with global-norm clipping follow the CPU reference', async () => {
  const device = await testDevice();
  const cfg: GptConfig = { vocab: 19, context: 6, layers: 2, heads: 2, width: 8, tiedEmbeddings: true };
  const B = 3;
  const rng = new Rng(600);
  const maxNorm = 0.5;
  const trainer = await GptTrainer.create(device, cfg, B, { gradClip: maxNorm });
  const p0 = randomParams(cfg, rng);
  trainer.setParams(p0);
  const cpuParams = Float32Array.from(p0);
  const adam = new AdamWCpu(p0.length);
  // Per element: an AdamW step moves a weight by about step_size·m̂/sqrt(v̂); a gradient error δ (the
  // bound above) changes that by at most step_size·2δ/|g| and never by more than 2·step_size.
  const bound = new Float64Array(p0.length);
  for (let t = 1; t <= 3; t++) {
    const { tokens, targets } = batchOf(cfg, B, rng);
    const cpu = gptForwardBackward(cfg, cpuParams, tokens, targets, B);
    const norm = gradNormCpu([cpu.grads]);
    assert.ok(norm > maxNorm, `the test needs clipping to act: norm ${norm}`);
    const loss = await trainer.step(tokens, targets, HP);
    assert.ok(Math.abs(loss - cpu.loss) <= 1e-4 * cpu.loss, `step ${t}: loss GPU ${loss} vs CPU ${cpu.loss}`);
    const gpuNorm = await trainer.lastGradNorm();
    assert.ok(Math.abs(gpuNorm - norm) <= 1e-4 * norm, `step ${t}: norm GPU ${gpuNorm} vs CPU ${norm}`);
    const scale = clipScaleCpu(norm, maxNorm);
    const clipped = cpu.grads.map((g) => g * scale);
    adam.step(cpuParams, clipped, HP);
    const stepSize = HP.lr / (1 - HP.beta1 ** t);
    for (const s of gptParamSpecs(cfg)) {
      const g = clipped.subarray(s.offset, s.offset + s.size);
      const gmax = Math.max(...Array.from(g, Math.abs));
      for (let i = 0; i < s.size; i++) {
        const delta = GRAD_REL * (gmax + Math.abs(g[i])) + 1e-4 * Math.abs(g[i]);
        const j = s.offset + i;
        bound[j] +=
          Math.min(2 * stepSize, (2 * stepSize * delta) / Math.abs(g[i])) + 4 * 2 ** -24 * Math.abs(cpuParams[j]);
      }
    }
  }
  assertClose('params after clipped AdamW steps', await trainer.getParams(), cpuParams, (i) => bound[i]);
  trainer.destroy();
});

test('GPT learns a repeated sequence, and the CPU reference agrees on the trained weights', async () => {
  const device = await testDevice();
  const cfg: GptConfig = { vocab: 7, context: 12, layers: 1, heads: 2, width: 16, tiedEmbeddings: true };
  const B = 4;
  const pattern = [0, 1, 2, 3, 4, 5, 6, 5, 4, 3, 2, 1];
  const trainer = await GptTrainer.create(device, cfg, B, { gradClip: 1 });
  trainer.setParams(gptInit(cfg, 7));
  const rng = new Rng(700);
  const make = () => {
    const tokens = new Int32Array(B * cfg.context);
    const targets = new Int32Array(B * cfg.context);
    for (let b = 0; b < B; b++) {
      const start = rng.int(pattern.length);
      for (let j = 0; j < cfg.context; j++) {
        tokens[b * cfg.context + j] = pattern[(start + j) % pattern.length];
        targets[b * cfg.context + j] = pattern[(start + j + 1) % pattern.length];
      }
    }
    return { tokens, targets };
  };
  const losses: number[] = [];
  for (let s = 0; s < 60; s++) {
    const { tokens, targets } = make();
    losses.push(await trainer.step(tokens, targets, { ...HP, lr: 0.01, weightDecay: 0 }));
  }
  const last = (losses[57] + losses[58] + losses[59]) / 3;
  assert.ok(last < 0.5 * losses[0], `loss went from ${losses[0]} to ${last}`);
  const { tokens, targets } = make();
  const cpuLoss = gptLoss(cfg, await trainer.getParams(), tokens, targets, B);
  const gpuLoss = await trainer.loss(tokens, targets);
  assert.ok(Math.abs(cpuLoss - gpuLoss) <= 1e-4 * Math.max(cpuLoss, 0.1), `CPU ${cpuLoss} vs GPU ${gpuLoss}`);
  trainer.destroy();
});

test('GptTrainer creates no GPU buffers after its first step, and reports the bytes it holds', async () => {
  const device = await testDevice();
  const cfg: GptConfig = {
    vocab: 11,
    context: 5,
    layers: 3,
    heads: 2,
    width: 8,
    tiedEmbeddings: false,
    lowRank: { rank: 2 },
  };
  const B = 2;
  const rng = new Rng(800);
  const counter = countBufferCreations(device);
  try {
    const trainer = await GptTrainer.create(device, cfg, B, { gradClip: 1 });
    trainer.setParams(gptInit(cfg, 1));
    let b = batchOf(cfg, B, rng);
    await trainer.step(b.tokens, b.targets, HP);
    await encodeRound(device, trainer);
    const afterFirst = counter.count;
    assert.ok(afterFirst > 0, 'the counter sees the trainer’s own allocations');
    for (let i = 0; i < 3; i++) {
      b = batchOf(cfg, B, rng);
      trainer.setParams(gptInit(cfg, 2 + i));
      await trainer.step(b.tokens, b.targets, HP);
      await trainer.forwardBackward(b.tokens, b.targets);
      await trainer.loss(b.tokens, b.targets);
      await encodeRound(device, trainer);
    }
    assert.equal(
      counter.count,
      afterFirst,
      `buffers created after the first step: ${counter.labels.slice(afterFirst).join(', ')}`,
    );
    // It holds at least the four padded parameter-sized buffers (weights, grads, m, v).
    assert.ok(trainer.gpuBytes() >= 16 * gptParamCount(cfg), `gpuBytes ${trainer.gpuBytes()}`);
    assert.ok(
      trainer.gpuBytes() <= counter.bytes + 64 * 1024,
      'gpuBytes does not exceed what was allocated (+ uniforms)',
    );
    trainer.destroy();
  } finally {
    counter.restore();
  }
});

test('GptTrainer refuses bad batches and configs with errors that name the problem', async () => {
  const device = await testDevice();
  const cfg: GptConfig = { vocab: 5, context: 4, layers: 1, heads: 1, width: 4, tiedEmbeddings: true };
  const trainer = await GptTrainer.create(device, cfg, 2);
  const ok = new Int32Array(8);
  await assert.rejects(trainer.step(new Int32Array(6), new Int32Array(6), HP), /4 tokens \(the context\)/);
  await assert.rejects(trainer.step(Int32Array.from([9, 0, 0, 0, 0, 0, 0, 0]), ok, HP), /outside the vocabulary/);
  await assert.rejects(GptTrainer.create(device, cfg, 0), /batch/);
  await assert.rejects(GptTrainer.create(device, { ...cfg, width: 256, heads: 1 }, 1), /head size/);
  await assert.rejects(GptTrainer.create(device, cfg, 1, { gradClip: -1 }), /gradClip/);
  trainer.destroy();
  await assert.rejects(trainer.loss(ok, ok), /destroyed/);
});

test('GPT steps() with clipping: the same weights and losses as step() per batch, bit for bit', async () => {
  const device = await testDevice();
  const cfg: GptConfig = { vocab: 19, context: 6, layers: 2, heads: 2, width: 8, tiedEmbeddings: true };
  const B = 3;
  const rng = new Rng(650);
  const batches = Array.from({ length: 7 }, () => batchOf(cfg, B, rng));
  const p0 = randomParams(cfg, rng);
  const one = await GptTrainer.create(device, cfg, B, { gradClip: 0.5 });
  const many = await GptTrainer.create(device, cfg, B, { gradClip: 0.5 });
  one.setParams(p0);
  many.setParams(p0);
  const want: number[] = [];
  for (const b of batches) want.push(await one.step(b.tokens, b.targets, HP));
  const got = await many.steps(batches.length, (s) => batches[s], HP);
  assert.deepEqual(Array.from(got), want);
  assert.equal(new Set(want).size, want.length, 'every step has its own loss');
  assert.deepEqual(await many.getParams(), await one.getParams());
  assert.equal(await many.lastGradNorm(), await one.lastGradNorm());
  one.destroy();
  many.destroy();
});
