// The float64 GPT reference against two independent implementations: central finite differences
// (every parameter of tiny models, in float64) and TensorFlow.js's CPU backend (autodiff, float32),
// for tied and untied embeddings and for low-rank blocks; plus properties any causal LM must have.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../util/rng';
import { gptParamSpecs, gptParamCount, gptParamViews, type GptConfig } from './gpt-spec';
import { gptForwardBackward, gptLoss, gptLogits } from './gpt-cpu';
import { buildGptTf } from './gpt-tfjs.test-helper';

const PRINT = process.env.STARLING_PRINT_ERRORS === '1';

/**
 * Random weights of order 0.5 everywhere (biases included; layernorm weights 1 ± 0.5), so attention
 * is far from uniform, GELUs are in their curved region and no gradient is trivially zero.
 */
function randomParams(cfg: GptConfig, rng: Rng, scale = 0.5): Float64Array {
  const p = new Float64Array(gptParamCount(cfg));
  for (const s of gptParamSpecs(cfg)) {
    const isLnWeight = /ln_(1|2|f)\.weight$/.test(s.name);
    for (let i = s.offset; i < s.offset + s.size; i++) p[i] = (isLnWeight ? 1 : 0) + scale * (2 * rng.next() - 1);
  }
  return p;
}

function randomTokens(cfg: GptConfig, n: number, rng: Rng): Int32Array {
  return Int32Array.from({ length: n }, () => rng.int(cfg.vocab));
}

const tiny: GptConfig = { vocab: 11, context: 5, layers: 2, heads: 2, width: 8, tiedEmbeddings: false };

function checkFiniteDifferences(cfg: GptConfig, seed: number, B: number, T: number): void {
  const rng = new Rng(seed);
  const params = randomParams(cfg, rng);
  const tokens = randomTokens(cfg, B * T, rng);
  const targets = randomTokens(cfg, B * T, rng);
  const { grads } = gptForwardBackward(cfg, params, tokens, targets, B);
  // Central differences with h = 1e-5: truncation h²/6·|f'''| (f''' is O(10) at these weights, so
  // ~2e-10) plus rounding ~2^-52·|loss|·(depth)/h ≈ 1e-10; measured ≤ 8e-11. The bound 1e-8 leaves
  // a wide margin while a wrong term in any backward (errors of order |g| ≈ 1e-3…1e-1) cannot pass.
  const h = 1e-5;
  const bound = 1e-8;
  let worst = 0;
  for (const s of gptParamSpecs(cfg)) {
    for (let i = s.offset; i < s.offset + s.size; i++) {
      const keep = params[i];
      params[i] = keep + h;
      const up = gptLoss(cfg, params, tokens, targets, B);
      params[i] = keep - h;
      const down = gptLoss(cfg, params, tokens, targets, B);
      params[i] = keep;
      const fd = (up - down) / (2 * h);
      const err = Math.abs(fd - grads[i]);
      worst = Math.max(worst, err / bound);
      assert.ok(err <= bound, `${s.name}[${i - s.offset}]: analytic ${grads[i]} vs finite difference ${fd}`);
    }
  }
  if (PRINT)
    console.log(
      `finite differences ${JSON.stringify(cfg.lowRank ?? 'full')} ` +
        `tied=${cfg.tiedEmbeddings}: worst error/bound ${worst.toFixed(3)}`,
    );
}

test('every gradient matches central finite differences (float64, untied embeddings)', () => {
  checkFiniteDifferences(tiny, 201, 3, 5);
});

test('every gradient matches central finite differences (float64, tied embeddings, T < context)', () => {
  checkFiniteDifferences({ ...tiny, tiedEmbeddings: true }, 202, 3, 4);
});

test('every gradient matches central finite differences (float64, low-rank middle block and all blocks)', () => {
  checkFiniteDifferences({ ...tiny, layers: 3, lowRank: { rank: 3 } }, 203, 2, 5);
  checkFiniteDifferences({ ...tiny, tiedEmbeddings: true, lowRank: { rank: 2, layers: 'all' } }, 204, 2, 5);
});

async function checkAgainstTf(cfg: GptConfig, seed: number, B: number, T: number): Promise<void> {
  await tf.setBackend('cpu');
  const rng = new Rng(seed);
  const params = Float32Array.from(randomParams(cfg, rng));
  const tokens = randomTokens(cfg, B * T, rng);
  const targets = randomTokens(cfg, B * T, rng);
  const ours = gptForwardBackward(cfg, params, tokens, targets, B);
  const model = buildGptTf(cfg, params);
  const tokT = tf.tensor2d(tokens, [B, T], 'int32');
  const tgtT = tf.tensor2d(targets, [B, T], 'int32');
  const { value, grads } = tf.variableGrads(() => model.loss(tokT, tgtT), model.vars);
  const tfLoss = (await value.data())[0];
  // float32 through ~10 layers of ≤ 4C-term sums, each ≲ 50·2^-24 ≈ 3e-6 relative: measured ≤ 5e-8
  // relative; the bound is 1e-6.
  assert.ok(Math.abs(tfLoss - ours.loss) <= 1e-6 * ours.loss, `loss: ours ${ours.loss} vs TF.js ${tfLoss}`);
  // Gradients: per tensor, within 2e-5 of the tensor's largest |g|. Each gradient is a float32
  // chain through the backward of every later layer (≈ 3L + 3 steps of sums over ≤ 4C or B·T terms,
  // relative error ≲ 50·2^-24 ≈ 3e-6 each, amplified where layernorm divides by its std and where
  // terms cancel); measured worst is 1.2e-6 of the max, while a wrong term misses by ≳ 1e-2.
  let worst = 0;
  for (let t = 0; t < model.specs.length; t++) {
    const s = model.specs[t];
    const tfg = await grads[model.vars[t].name].data();
    const ref = ours.grads.subarray(s.offset, s.offset + s.size);
    const scale = Math.max(...Array.from(ref, Math.abs));
    assert.ok(scale > 0, `${s.name}: gradient is all zeros, the check would be vacuous`);
    for (let i = 0; i < s.size; i++) {
      const err = Math.abs(tfg[i] - ref[i]);
      worst = Math.max(worst, err / (2e-5 * scale));
      assert.ok(err <= 2e-5 * scale, `${s.name}[${i}]: ours ${ref[i]} vs TF.js ${tfg[i]} (max |g| ${scale})`);
    }
  }
  if (PRINT)
    console.log(
      `TF.js ${JSON.stringify(cfg.lowRank ?? 'full')} tied=${cfg.tiedEmbeddings}: loss rel err ` +
        `${Math.abs(tfLoss - ours.loss) / ours.loss}, worst grad error/bound ${worst.toFixed(3)}`,
    );
  tf.dispose([value, ...Object.values(grads), tokT, tgtT]);
  model.dispose();
}

test('loss and every gradient match TensorFlow.js (CPU backend, float32): untied, odd sizes', async () => {
  await checkAgainstTf({ vocab: 13, context: 7, layers: 2, heads: 3, width: 12, tiedEmbeddings: false }, 211, 5, 7);
});

test('loss and every gradient match TensorFlow.js: tied embeddings, T < context', async () => {
  await checkAgainstTf({ vocab: 13, context: 9, layers: 2, heads: 3, width: 12, tiedEmbeddings: true }, 212, 3, 6);
});

test('loss and every gradient match TensorFlow.js: low-rank middle blocks', async () => {
  await checkAgainstTf(
    { vocab: 13, context: 7, layers: 4, heads: 2, width: 12, tiedEmbeddings: true, lowRank: { rank: 5 } },
    213,
    3,
    7,
  );
});

test('tied embeddings: wte gets the gradient of both its uses (= untied with lm_head = wte)', () => {
  const rng = new Rng(221);
  const tied: GptConfig = { ...tiny, tiedEmbeddings: true };
  const pTied = randomParams(tied, rng);
  const pUntied = new Float64Array(gptParamCount(tiny));
  pUntied.set(pTied);
  const vu = gptParamViews(tiny, pUntied);
  vu.get('lm_head.weight')!.set(vu.get('wte.weight')!);
  const B = 2;
  const tokens = randomTokens(tiny, B * 5, rng);
  const targets = randomTokens(tiny, B * 5, rng);
  const a = gptForwardBackward(tied, pTied, tokens, targets, B);
  const b = gptForwardBackward(tiny, pUntied, tokens, targets, B);
  assert.ok(Math.abs(a.loss - b.loss) <= 1e-14 * a.loss, `loss tied ${a.loss} vs untied ${b.loss}`);
  const gt = gptParamViews(tied, a.grads);
  const gu = gptParamViews(tiny, b.grads);
  const sum = gu.get('wte.weight')!.map((x, i) => x + gu.get('lm_head.weight')![i]);
  const wteT = gt.get('wte.weight')!;
  for (let i = 0; i < sum.length; i++)
    assert.ok(Math.abs(wteT[i] - sum[i]) <= 1e-13, `wte[${i}]: ${wteT[i]} vs ${sum[i]}`);
  // Everything else is identical (same computation, same order).
  for (const s of gptParamSpecs(tied)) {
    if (s.name === 'wte.weight') continue;
    assert.deepEqual(gt.get(s.name), gu.get(s.name), s.name);
  }
});

test('causal: a position’s logits depend only on the tokens up to it and on its position', () => {
  const cfg: GptConfig = { vocab: 11, context: 6, layers: 2, heads: 2, width: 8, tiedEmbeddings: false };
  const rng = new Rng(231);
  const params = randomParams(cfg, rng);
  const seq = randomTokens(cfg, 6, rng);
  const full = gptLogits(cfg, params, seq, 1);
  // Changing token 4 leaves positions 0..3 unchanged and changes position 4.
  const changed = seq.slice();
  changed[4] = (changed[4] + 1) % cfg.vocab;
  const other = gptLogits(cfg, params, changed, 1);
  const V = cfg.vocab;
  assert.deepEqual(other.subarray(0, 4 * V), full.subarray(0, 4 * V));
  assert.ok(
    other.subarray(4 * V, 5 * V).some((x, i) => Math.abs(x - full[4 * V + i]) > 1e-6),
    'position 4 must see its own token',
  );
  // A prefix (T = 3 < context) gives the same logits as the first 3 positions of the full sequence.
  const prefix = gptLogits(cfg, params, seq.subarray(0, 3), 1);
  for (let i = 0; i < 3 * V; i++) assert.ok(Math.abs(prefix[i] - full[i]) <= 1e-12, `prefix logit ${i}`);
});

test('gptLoss (forward only, one sequence at a time) equals the loss from gptLogits and gptForwardBackward', () => {
  const cfg: GptConfig = { vocab: 17, context: 8, layers: 3, heads: 4, width: 16, tiedEmbeddings: true };
  const rng = new Rng(241);
  const params = Float32Array.from(randomParams(cfg, rng, 0.3));
  const B = 4;
  const tokens = randomTokens(cfg, B * 8, rng);
  const targets = randomTokens(cfg, B * 8, rng);
  const loss = gptLoss(cfg, params, tokens, targets, B);
  const ref = gptForwardBackward(cfg, params, tokens, targets, B).loss;
  const logits = gptLogits(cfg, params, tokens, B);
  let fromLogits = 0;
  for (let n = 0; n < B * 8; n++) {
    const row = Array.from(logits.subarray(n * cfg.vocab, (n + 1) * cfg.vocab));
    const mx = Math.max(...row);
    fromLogits += mx + Math.log(row.reduce((a, x) => a + Math.exp(x - mx), 0)) - row[targets[n]];
  }
  fromLogits /= B * 8;
  // Same f64 arithmetic in a different summation order: agreement to ~1e-15 relative.
  assert.ok(Math.abs(loss - ref) <= 1e-12 * ref, `gptLoss ${loss} vs ${ref}`);
  assert.ok(Math.abs(fromLogits - ref) <= 1e-12 * ref, `from logits ${fromLogits} vs ${ref}`);
  assert.ok(ref > 0 && Number.isFinite(ref));
});

test('bad inputs are rejected naming what is wrong', () => {
  const params = new Float32Array(gptParamCount(tiny));
  const t = Int32Array.from([0, 1, 2, 3, 4, 5]);
  assert.throws(() => gptLoss(tiny, params.subarray(1), t, t, 2), /expected \d+ parameters for this model, got \d+/);
  assert.throws(() => gptLoss(tiny, params, t, t, 4), /positive multiple of B = 4, got 6/);
  assert.throws(() => gptLoss(tiny, params, t, t, 1), /sequence length 6 \(tokens.length \/ B\) exceeds the context 5/);
  assert.throws(() => gptLoss(tiny, params, t, t.subarray(1), 2), /expected 6 targets \(B 2 × T 3\), got 5/);
  assert.throws(
    () => gptLoss(tiny, params, Int32Array.from([0, 1, 11, 3]), t.subarray(0, 4), 2),
    /tokens\[2\] = 11 is outside the vocabulary \[0, 11\)/,
  );
  assert.throws(
    () => gptForwardBackward(tiny, params, t.subarray(0, 4), Int32Array.from([0, -1, 0, 0]), 2),
    /targets\[1\] = -1 is outside/,
  );
  assert.throws(() => gptLogits(tiny, params, t, 0), /B \(sequences in the batch\) must be a positive integer, got 0/);
});
