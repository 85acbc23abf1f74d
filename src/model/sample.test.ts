import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../util/rng';
import { argmax, generate, sampleToken, samplingDistribution, validateSampleOptions } from './sample';

test('temperature 0 is greedy', () => {
  const rng = new Rng(1);
  for (let t = 0; t < 20; t++) {
    const logits = new Rng(t + 100).uniformArray(17, -3, 3);
    assert.equal(sampleToken(logits, { temperature: 0 }, rng), argmax(logits));
  }
});

test('draws follow softmax(logits / T): empirical frequencies within 4 standard errors', () => {
  const logits = new Rng(7).uniformArray(6, -2, 2);
  for (const temperature of [0.5, 1, 2]) {
    const p = samplingDistribution(logits, { temperature });
    const draws = 40_000;
    const counts = new Float64Array(p.length);
    const rng = new Rng(42);
    for (let i = 0; i < draws; i++) counts[sampleToken(logits, { temperature }, rng)]++;
    for (let i = 0; i < p.length; i++) {
      const se = Math.sqrt((p[i] * (1 - p[i])) / draws);
      assert.ok(
        Math.abs(counts[i] / draws - p[i]) < 4 * se + 1e-9,
        `T=${temperature} token ${i}: ${counts[i] / draws} vs ${p[i]}`,
      );
    }
  }
});

test('higher temperature flattens the distribution; top-k keeps only k tokens', () => {
  const logits = new Rng(9).uniformArray(10, -3, 3);
  const entropy = (p: Float64Array) => -p.reduce((a, x) => a + (x > 0 ? x * Math.log(x) : 0), 0);
  assert.ok(
    entropy(samplingDistribution(logits, { temperature: 2 })) >
      entropy(samplingDistribution(logits, { temperature: 0.5 })),
  );
  const p = samplingDistribution(logits, { temperature: 1, topK: 3 });
  assert.equal([...p].filter((x) => x > 0).length, 3);
  const top = Array.from(logits.keys())
    .sort((a, b) => logits[b] - logits[a])
    .slice(0, 3);
  for (const i of top) assert.ok(p[i] > 0);
});

test('generate feeds back its own tokens within the window and is reproducible by seed', async () => {
  const seen: number[][] = [];
  const next = (ctx: Int32Array) => {
    seen.push(Array.from(ctx));
    const l = new Float32Array(5);
    l[(ctx[ctx.length - 1] + 1) % 5] = 10; // strongly prefers last+1
    return l;
  };
  const out = await generate(next, Int32Array.from([0]), 6, 3, { temperature: 0, seed: 1 });
  assert.deepEqual(Array.from(out), [0, 1, 2, 3, 4, 0, 1]);
  assert.ok(seen.every((c) => c.length <= 3));
  const a = await generate(() => new Float32Array(5), Int32Array.from([0]), 20, 3, { temperature: 1, seed: 5 });
  const b = await generate(() => new Float32Array(5), Int32Array.from([0]), 20, 3, { temperature: 1, seed: 5 });
  assert.deepEqual(a, b);
  assert.throws(() => validateSampleOptions({ temperature: -1 }), /temperature/);
});
