// The CPU reference model against two independent implementations: central finite differences
// (every parameter of a tiny model, in float64) and TensorFlow.js's CPU backend (autodiff, float32).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../util/rng';
import { mlpParamSpecs, mlpParamCount, mlpInit, type MlpConfig } from './mlp-spec';
import { mlpForwardBackward, mlpLoss } from './mlp-cpu';
import * as tf from '@tensorflow/tfjs';

function randomBatch(cfg: MlpConfig, n: number, rng: Rng) {
  const tokens = Int32Array.from({ length: n * cfg.context }, () => rng.int(cfg.vocab));
  const targets = Int32Array.from({ length: n }, () => rng.int(cfg.vocab));
  return { tokens, targets };
}

/** Random weights of order 1 everywhere (biases included), so no gradient is trivially zero. */
function randomParams(cfg: MlpConfig, rng: Rng): Float32Array {
  return rng.uniformArray(mlpParamCount(cfg), -1, 1);
}

test('every gradient matches central finite differences (float64, tiny model)', () => {
  const cfg: MlpConfig = { vocab: 5, context: 2, embed: 3, hidden: 4 };
  const rng = new Rng(101);
  const params = Float64Array.from(randomParams(cfg, rng));
  const { tokens, targets } = randomBatch(cfg, 3, rng);
  const { grads } = mlpForwardBackward(cfg, params, tokens, targets);
  // Step 1e-5: truncation error ~h²·|f'''| ≈ 1e-10, rounding ~2^-52·|loss|/h ≈ 1e-11; so 1e-8 is ample.
  const h = 1e-5;
  for (const s of mlpParamSpecs(cfg)) {
    for (let i = s.offset; i < s.offset + s.size; i++) {
      const keep = params[i];
      params[i] = keep + h;
      const up = mlpForwardBackward(cfg, params, tokens, targets).loss;
      params[i] = keep - h;
      const down = mlpForwardBackward(cfg, params, tokens, targets).loss;
      params[i] = keep;
      const fd = (up - down) / (2 * h);
      assert.ok(
        Math.abs(fd - grads[i]) <= 1e-8,
        `${s.name}[${i - s.offset}]: analytic ${grads[i]} vs finite difference ${fd}`,
      );
    }
  }
});

test('loss and gradients match TensorFlow.js (CPU backend) on odd sizes', async () => {
  await tf.setBackend('cpu');
  const cfg: MlpConfig = { vocab: 7, context: 3, embed: 5, hidden: 11 };
  const B = 13;
  const rng = new Rng(102);
  const params = randomParams(cfg, rng);
  const { tokens, targets } = randomBatch(cfg, B, rng);
  const specs = mlpParamSpecs(cfg);
  const tensors = specs.map((s) => tf.tensor(params.subarray(s.offset, s.offset + s.size), s.shape));
  const lossFn = (emb: tf.Tensor, wh: tf.Tensor, bh: tf.Tensor, wo: tf.Tensor, bo: tf.Tensor): tf.Scalar => {
    const x = tf.reshape<tf.Rank.R2>(tf.gather(emb, tf.tensor1d(tokens, 'int32')), [B, cfg.context * cfg.embed]);
    const pre = tf.add(tf.matMul(x, wh as tf.Tensor2D, false, true), bh);
    // GELU (tanh form) written out, independent of our implementation.
    const u = tf.mul(Math.sqrt(2 / Math.PI), tf.add(pre, tf.mul(0.044715, tf.pow(pre, 3))));
    const hid = tf.mul(tf.mul(0.5, pre), tf.add(1, tf.tanh(u)));
    const logits = tf.add(tf.matMul(hid as tf.Tensor2D, wo as tf.Tensor2D, false, true), bo);
    const onehot = tf.oneHot(tf.tensor1d(targets, 'int32'), cfg.vocab);
    return tf.losses.softmaxCrossEntropy<tf.Tensor, tf.Scalar>(onehot, logits);
  };
  const { value, grads: g } = tf.valueAndGrads((...ts: tf.Tensor[]) =>
    lossFn(...(ts as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor])),
  )(tensors);
  const ours = mlpForwardBackward(cfg, params, tokens, targets);
  // float32 in TF.js: loss agrees to ~1e-6 relative; gradients to 1e-5 of each tensor's largest entry.
  assert.ok(Math.abs((await value.data())[0] - ours.loss) <= 1e-5 * ours.loss, `loss ${ours.loss}`);
  for (let t = 0; t < specs.length; t++) {
    const s = specs[t];
    const tfg = await g[t].data();
    const ref = ours.grads.subarray(s.offset, s.offset + s.size);
    const scale = Math.max(...Array.from(ref, Math.abs));
    for (let i = 0; i < s.size; i++) {
      assert.ok(Math.abs(tfg[i] - ref[i]) <= 1e-5 * scale, `${s.name}[${i}]: ours ${ref[i]} vs TF.js ${tfg[i]}`);
    }
  }
});

test('mlpLoss (fast f32 forward) equals the float64 loss to 1e-6 relative', () => {
  const cfg: MlpConfig = { vocab: 67, context: 4, embed: 9, hidden: 70 };
  const rng = new Rng(103);
  const params = mlpInit(cfg, 5);
  const { tokens, targets } = randomBatch(cfg, 301, rng);
  const fast = mlpLoss(cfg, params, tokens, targets);
  const ref = mlpForwardBackward(cfg, params, tokens, targets).loss;
  // Activations rounded to f32 (relative 2^-24 each) through two layers: far below 1e-6.
  assert.ok(Math.abs(fast - ref) <= 1e-6 * ref, `mlpLoss ${fast} vs ${ref}`);
});

test('bad inputs are rejected naming what is wrong', () => {
  const cfg: MlpConfig = { vocab: 5, context: 2, embed: 3, hidden: 4 };
  const params = mlpInit(cfg, 1);
  const ok = { tokens: Int32Array.from([0, 1, 2, 3]), targets: Int32Array.from([4, 0]) };
  assert.throws(
    () => mlpLoss(cfg, params.subarray(1), ok.tokens, ok.targets),
    /expected 68 parameters for this model, got 67/,
  );
  assert.throws(
    () => mlpLoss(cfg, params, ok.tokens.subarray(1), ok.targets),
    /expected 4 tokens \(2 examples × context 2\), got 3/,
  );
  assert.throws(
    () => mlpLoss(cfg, params, Int32Array.from([0, 1, 5, 3]), ok.targets),
    /tokens\[2\] = 5 is outside the vocabulary \[0, 5\)/,
  );
  assert.throws(() => mlpLoss(cfg, params, ok.tokens, Int32Array.from([4, -1])), /targets\[1\] = -1 is outside/);
  assert.throws(() => mlpLoss(cfg, params, new Int32Array(0), new Int32Array(0)), /at least one example/);
});

test('mlpLogits agrees with mlpLoss: the loss of a target is logsumexp(logits) − logits[target]', async () => {
  const { mlpLogits } = await import('./mlp-cpu');
  const cfg = { vocab: 9, context: 3, embed: 4, hidden: 7 };
  const rng = new Rng(77);
  const params = mlpInit(cfg, 5);
  for (let i = 0; i < 5; i++) {
    const ctx = Int32Array.from({ length: 3 }, () => rng.int(9));
    const target = rng.int(9);
    const l = mlpLogits(cfg, params, ctx);
    const mx = Math.max(...l);
    const lse = mx + Math.log(l.reduce((a, x) => a + Math.exp(x - mx), 0));
    const loss = mlpLoss(cfg, params, ctx, Int32Array.of(target));
    assert.ok(Math.abs(lse - l[target] - loss) < 1e-9, `${lse - l[target]} vs ${loss}`);
  }
  assert.throws(() => mlpLogits(cfg, params, Int32Array.of(1, 2)), /context must hold 3/);
});
