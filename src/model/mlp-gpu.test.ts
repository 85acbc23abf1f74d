// The GPU MLP against the CPU reference (mlp-cpu.ts, float64) and the CPU AdamW.
// Gradient bound: float32 accumulations here run over at most ~V + H + B ≈ 150 terms, each with
// relative rounding 2^-24, so errors stay below ~150·2^-24 ≈ 1e-5 of the magnitudes summed, which are
// of the order of the tensor's largest gradient; we allow 3e-5·max|g| per tensor (measured: < 1e-5).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../util/rng';
import { mlpParamSpecs, mlpParamCount, mlpInit, type MlpConfig } from './mlp-spec';
import { mlpForwardBackward, mlpLoss } from './mlp-cpu';
import { MlpTrainer, type AdamWHyper } from './mlp-gpu';
import { AdamWCpu } from '../optim/adamw-cpu';
import { testDevice, assertClose, U32 as u } from '../gpu/gpu.test-helper';

const SMALL: MlpConfig = { vocab: 7, context: 3, embed: 5, hidden: 11 };
const ODD: MlpConfig = { vocab: 67, context: 4, embed: 9, hidden: 70 };
const HP: AdamWHyper = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };

function batchOf(cfg: MlpConfig, B: number, rng: Rng) {
  return {
    tokens: Int32Array.from({ length: B * cfg.context }, () => rng.int(cfg.vocab)),
    targets: Int32Array.from({ length: B }, () => rng.int(cfg.vocab)),
  };
}

const GRAD_REL = 3e-5;

function assertGradsClose(cfg: MlpConfig, got: Float32Array, want: Float64Array, what: string): void {
  for (const s of mlpParamSpecs(cfg)) {
    const ref = want.subarray(s.offset, s.offset + s.size);
    const scale = Math.max(...Array.from(ref, Math.abs));
    assertClose(`${what} ${s.name}`, got.subarray(s.offset, s.offset + s.size), ref, GRAD_REL * scale + 1e-30);
  }
}

for (const [cfg, B] of [
  [SMALL, 13],
  [ODD, 65],
  [SMALL, 1],
] as const) {
  test(`loss and every gradient match the CPU reference: ${JSON.stringify(cfg)}, B=${B}`, async () => {
    const device = await testDevice();
    const rng = new Rng(200 + B);
    const trainer = await MlpTrainer.create(device, cfg, B);
    const params = rng.uniformArray(mlpParamCount(cfg), -1, 1); // random everywhere, biases too
    trainer.setParams(params);
    assert.deepEqual(await trainer.getParams(), params);
    const { tokens, targets } = batchOf(cfg, B, rng);
    const gpu = await trainer.forwardBackward(tokens, targets);
    const cpu = mlpForwardBackward(cfg, params, tokens, targets);
    assert.ok(Math.abs(gpu.loss - cpu.loss) <= 1e-5 * cpu.loss, `loss GPU ${gpu.loss} vs CPU ${cpu.loss}`);
    assertGradsClose(cfg, gpu.grads, cpu.grads, 'grad');
    trainer.destroy();
  });
}

test('AdamW steps on the GPU follow the CPU reference (CPU gradients + AdamWCpu)', async () => {
  const device = await testDevice();
  const cfg = SMALL;
  const B = 13;
  const rng = new Rng(300);
  const trainer = await MlpTrainer.create(device, cfg, B);
  const p0 = mlpInit(cfg, 3);
  trainer.setParams(p0);
  const cpuParams = Float32Array.from(p0);
  const adam = new AdamWCpu(p0.length);
  // Per element: an AdamW step moves a weight by about step_size·m̂/sqrt(v̂); a gradient error δ
  // (our bound above) changes that by at most step_size·2δ/|g| (and never more than 2·step_size).
  const bound = new Float64Array(p0.length);
  const steps = 4;
  for (let t = 1; t <= steps; t++) {
    const { tokens, targets } = batchOf(cfg, B, rng);
    const cpu = mlpForwardBackward(cfg, cpuParams, tokens, targets);
    const loss = await trainer.step(tokens, targets, HP);
    assert.ok(Math.abs(loss - cpu.loss) <= 1e-4 * cpu.loss, `step ${t}: loss GPU ${loss} vs CPU ${cpu.loss}`);
    adam.step(cpuParams, cpu.grads, HP);
    const stepSize = HP.lr / (1 - HP.beta1 ** t);
    for (const s of mlpParamSpecs(cfg)) {
      const g = cpu.grads.subarray(s.offset, s.offset + s.size);
      const delta = GRAD_REL * Math.max(...Array.from(g, Math.abs));
      for (let i = 0; i < s.size; i++) {
        const j = s.offset + i;
        bound[j] += Math.min(2 * stepSize, (2 * stepSize * delta) / Math.abs(g[i])) + 4 * u * Math.abs(cpuParams[j]);
      }
    }
  }
  assertClose('params after AdamW steps', await trainer.getParams(), cpuParams, (i) => bound[i]);
  trainer.destroy();
});

test('loss falls over 30 steps on a repeated pattern', async () => {
  const device = await testDevice();
  const cfg: MlpConfig = { vocab: 6, context: 3, embed: 8, hidden: 32 };
  const B = 16;
  const pattern = [0, 1, 2, 3, 4, 5, 4, 3, 2, 1];
  const trainer = await MlpTrainer.create(device, cfg, B);
  trainer.setParams(mlpInit(cfg, 4));
  const rng = new Rng(400);
  const losses: number[] = [];
  for (let s = 0; s < 30; s++) {
    const tokens = new Int32Array(B * cfg.context);
    const targets = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      const start = rng.int(pattern.length);
      for (let j = 0; j < cfg.context; j++) tokens[b * cfg.context + j] = pattern[(start + j) % pattern.length];
      targets[b] = pattern[(start + cfg.context) % pattern.length];
    }
    losses.push(await trainer.step(tokens, targets, { ...HP, lr: 0.03 }));
  }
  const first = losses[0];
  const last = (losses[27] + losses[28] + losses[29]) / 3;
  assert.ok(last < 0.3 * first, `loss went from ${first} to ${last}: ${losses.map((l) => l.toFixed(3)).join(' ')}`);
  // The coordinator's CPU evaluation sees the same weights the GPU trained.
  const params = await trainer.getParams();
  const tokens = Int32Array.from(
    { length: pattern.length * cfg.context },
    (_, i) => pattern[(Math.floor(i / 3) + (i % 3)) % pattern.length],
  );
  const targets = Int32Array.from({ length: pattern.length }, (_, b) => pattern[(b + 3) % pattern.length]);
  assert.ok(mlpLoss(cfg, params, tokens, targets) < 0.3 * first);
  trainer.destroy();
});

test('the trainer validates its inputs and reports its GPU memory', async () => {
  const device = await testDevice();
  await assert.rejects(MlpTrainer.create(device, SMALL, 0), /batch must be an integer in \[1, 65536\], got 0/);
  await assert.rejects(
    MlpTrainer.create(device, { ...SMALL, vocab: 1 }, 4),
    /model\.vocab must be an integer in \[2, 4096\], got 1/,
  );
  const trainer = await MlpTrainer.create(device, SMALL, 4);
  const P = trainer.paramCount;
  assert.ok(
    trainer.gpuBytes() >= 4 * (4 * P + 3 * P),
    `gpuBytes ${trainer.gpuBytes()} covers params, grads, AdamW state and the update buffers`,
  );
  assert.throws(() => trainer.setParams(new Float32Array(P - 1)), new RegExp(`expected ${P} parameters, got ${P - 1}`));
  const bad = new Float32Array(P);
  bad[3] = NaN;
  assert.throws(() => trainer.setParams(bad), /parameter 3 is NaN/);
  const tokens = new Int32Array(4 * SMALL.context);
  await assert.rejects(trainer.step(tokens, new Int32Array(3), HP), /expected 4 targets \(the batch size\), got 3/);
  tokens[5] = 7;
  await assert.rejects(
    trainer.step(tokens, new Int32Array(4), HP),
    /tokens\[5\] = 7 is outside the vocabulary \[0, 7\)/,
  );
  await assert.rejects(
    trainer.step(new Int32Array(12), new Int32Array(4), { ...HP, beta2: 1 }),
    /AdamW beta2 must be in \[0, 1\), got 1/,
  );
  trainer.destroy();
  await assert.rejects(trainer.getParams(), /destroyed/);
});

test('steps(): the same weights and losses as step() per batch, bit for bit, across the 256-step loss log', async () => {
  const device = await testDevice();
  const B = 5;
  const count = 259; // past one full log of 256 losses, prime
  const rng = new Rng(400);
  const batches = Array.from({ length: count }, () => batchOf(SMALL, B, rng));
  const p0 = rng.uniformArray(mlpParamCount(SMALL), -1, 1);
  const one = await MlpTrainer.create(device, SMALL, B);
  const many = await MlpTrainer.create(device, SMALL, B);
  one.setParams(p0);
  many.setParams(p0);
  const want: number[] = [];
  for (const b of batches) want.push(await one.step(b.tokens, b.targets, HP));
  const asked: number[] = [];
  const got = await many.steps(count, (s) => (asked.push(s), batches[s]), HP);
  assert.deepEqual(
    asked,
    Array.from({ length: count }, (_, s) => s),
    'next() is called once per step, in order',
  );
  assert.deepEqual(Array.from(got), want);
  assert.ok(new Set(want).size > count / 2, 'the losses differ from step to step, so a stale log entry would show');
  assert.deepEqual(await many.getParams(), await one.getParams());
  await assert.rejects(
    many.steps(0, (s) => batches[s], HP),
    /steps: count must be a positive integer, got 0/,
  );
  await assert.rejects(
    many.steps(2, (s) => batches[s], { ...HP, lr: -1 }),
    /AdamW lr/,
  );
  one.destroy();
  many.destroy();
});
