// Memory discipline: the trainer makes its buffers once per (model, batch) and none per step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../util/rng';
import { mlpInit, type MlpConfig } from './mlp-spec';
import { MlpTrainer } from './mlp-gpu';
import { testDevice } from '../gpu/gpu.test-helper';
import { countBufferCreations } from '../gpu/buffer-counter.test-helper';
import { encodeRound } from './trainer.test-helper';

test('MlpTrainer creates no GPU buffers after its first step', async () => {
  const device = await testDevice();
  const cfg: MlpConfig = { vocab: 13, context: 3, embed: 5, hidden: 17 };
  const batch = 7;
  const rng = new Rng(11);
  const batchOf = () => ({
    tokens: Int32Array.from({ length: batch * cfg.context }, () => rng.int(cfg.vocab)),
    targets: Int32Array.from({ length: batch }, () => rng.int(cfg.vocab)),
  });
  const hp = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };
  const counter = countBufferCreations(device);
  try {
    const trainer = await MlpTrainer.create(device, cfg, batch);
    trainer.setParams(mlpInit(cfg, 3));
    let b = batchOf();
    await trainer.step(b.tokens, b.targets, hp);
    await encodeRound(device, trainer);
    const afterFirst = counter.count;
    assert.ok(afterFirst > 0, 'the counter sees the trainer’s own allocations');
    for (let i = 0; i < 4; i++) {
      b = batchOf();
      trainer.setParams(mlpInit(cfg, 4 + i));
      await trainer.step(b.tokens, b.targets, hp);
      await trainer.step(b.tokens, b.targets, hp);
      await encodeRound(device, trainer);
    }
    assert.equal(
      counter.count,
      afterFirst,
      `buffers created after the first step: ${counter.labels.slice(afterFirst).join(', ')}`,
    );
    assert.ok(trainer.gpuBytes() > 0);
    trainer.destroy();
  } finally {
    counter.restore();
  }
});
