import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../util/rng';
import { AdamWCpu } from './adamw-cpu';
import { adamwStepConstants, validateAdamW, type AdamWHyper } from './adamw';

test('with weight decay 0, AdamWCpu follows TensorFlow.js Adam (independent implementation)', async () => {
  await tf.setBackend('cpu');
  const n = 37;
  const rng = new Rng(1);
  const hp: AdamWHyper = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-7, weightDecay: 0 };
  const p0 = rng.uniformArray(n);
  const ours = Float32Array.from(p0);
  const adam = new AdamWCpu(n);
  const v = tf.variable(tf.tensor1d(p0));
  const opt = tf.train.adam(hp.lr, hp.beta1, hp.beta2, hp.eps);
  const steps = 6;
  for (let t = 0; t < steps; t++) {
    const g = rng.uniformArray(n);
    adam.step(ours, g, hp);
    opt.applyGradients([{ name: v.name, tensor: tf.tensor1d(g) }]);
  }
  const theirs = await v.data();
  // TF folds the bias corrections into the step and adds eps to sqrt(v) (not sqrt(v̂)); with a small eps
  // the two agree to float32 precision: 1e-6 absolute on weights that moved by ~steps·lr = 0.06.
  for (let i = 0; i < n; i++)
    assert.ok(Math.abs(theirs[i] - ours[i]) <= 1e-6, `param ${i}: ours ${ours[i]} vs TF.js ${theirs[i]}`);
});

test('weight decay is decoupled: with zero gradients a weight only shrinks by lr·wd', () => {
  const hp: AdamWHyper = { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.5 };
  const p = Float32Array.from([2, -3, 0.25]);
  const want = Array.from(p, (x) => Math.fround(x * (1 - hp.lr * hp.weightDecay)));
  new AdamWCpu(3).step(p, [0, 0, 0], hp);
  assert.deepEqual(Array.from(p), want);
});

test('bias correction: a constant gradient moves each weight by lr·g/(|g| + eps) at every step', () => {
  const hp: AdamWHyper = { lr: 0.01, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0 };
  const g = [0.5, -2, 1e-3];
  const p = new Float32Array(3);
  const adam = new AdamWCpu(3);
  for (let t = 1; t <= 5; t++) {
    const before = Float32Array.from(p);
    adam.step(p, g, hp);
    for (let i = 0; i < 3; i++) {
      const moved = before[i] - p[i];
      const want = (hp.lr * g[i]) / (Math.abs(g[i]) + hp.eps);
      assert.ok(Math.abs(moved - want) <= 1e-8, `step ${t} param ${i}: moved ${moved}, want ${want}`);
    }
  }
  assert.equal(adam.t, 5);
});

test('hyperparameters out of range are rejected naming the field and the range', () => {
  const ok: AdamWHyper = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };
  assert.throws(() => validateAdamW({ ...ok, lr: -1 }), /AdamW lr must be a finite number >= 0, got -1/);
  assert.throws(() => validateAdamW({ ...ok, beta1: 1 }), /AdamW beta1 must be in \[0, 1\), got 1/);
  assert.throws(() => validateAdamW({ ...ok, eps: 0 }), /AdamW eps must be a finite number > 0, got 0/);
  assert.throws(
    () => validateAdamW({ ...ok, weightDecay: NaN }),
    /AdamW weightDecay must be a finite number >= 0, got NaN/,
  );
  assert.throws(() => adamwStepConstants(ok, 0), /step count must be an integer >= 1, got 0/);
  assert.throws(() => new AdamWCpu(2).step(new Float32Array(2), [1], ok), /expected 2 params and grads, got 2 and 1/);
});
