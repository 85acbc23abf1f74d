// The model facade: dispatch to each family, GPT batches on real text (targets = tokens shifted by
// one), CPU loss and next-token logits, generation, and createTrainer's trainers against the CPU loss.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../util/rng';
import { CharTokenizer } from '../data/tokenizer';
import { mlpFlopsPerToken, mlpInit, mlpParamCount, mlpParamSpecs } from './mlp-spec';
import { mlpLogits, mlpLoss } from './mlp-cpu';
import { gptFlopsPerToken, gptInit, gptParamCount, gptParamSpecs } from './gpt-spec';
import { gptLogits, gptLoss } from './gpt-cpu';
import { MlpTrainer } from './mlp-gpu';
import { GptTrainer } from './gpt-gpu';
import { argmax } from './sample';
import {
  createTrainer,
  describeModel,
  modelEvalBatch,
  modelFlopsPerToken,
  modelGenerate,
  modelInit,
  modelLoss,
  modelNextLogits,
  modelParamCount,
  modelParamSpecs,
  modelSampleBatch,
  modelTokensPerStep,
  parseModelConfig,
  validateModel,
  type GptModelConfig,
  type MlpModelConfig,
  type ModelConfig,
} from './model';
import { testDevice } from '../gpu/gpu.test-helper';

// Real text (Sonnet 18), so batches are checked on a real character stream, not a ramp.
const TEXT = `Shall I compare thee to a summer's day?
Thou art more lovely and more temperate:
Rough winds do shake the darling buds of May,
And summer's lease hath all too short a date;
Sometime too hot the eye of heaven shines,
And often is his gold complexion dimm'd;
`;
const tok = CharTokenizer.fromText(TEXT);
const stream = tok.encode(TEXT);
const V = tok.size;

const mlp: MlpModelConfig = { type: 'mlp', vocab: V, context: 5, embed: 4, hidden: 12 };
const gpt: GptModelConfig = { type: 'gpt', vocab: V, context: 8, layers: 1, heads: 2, width: 8, tiedEmbeddings: true };

test('dispatch: specs, counts, init and FLOPs are the family’s own', () => {
  assert.deepEqual(modelParamSpecs(mlp), mlpParamSpecs(mlp));
  assert.deepEqual(modelParamSpecs(gpt), gptParamSpecs(gpt));
  assert.equal(modelParamCount(mlp), mlpParamCount(mlp));
  assert.equal(modelParamCount(gpt), gptParamCount(gpt));
  assert.deepEqual(modelInit(mlp, 4), mlpInit(mlp, 4));
  assert.deepEqual(modelInit(gpt, 4), gptInit(gpt, 4));
  assert.equal(modelFlopsPerToken(mlp), mlpFlopsPerToken(mlp));
  assert.equal(modelFlopsPerToken(gpt), gptFlopsPerToken(gpt, gpt.context));
  assert.equal(modelTokensPerStep(mlp, 32), 32);
  assert.equal(modelTokensPerStep(gpt, 32), 32 * 8);
  assert.match(describeModel(gpt), /^GPT 1 layers × width 8, 2 heads, context 8, .*tied embeddings: [\d,]+ params$/);
  assert.match(describeModel(mlp), /^MLP context 5, embed 4, hidden 12/);
});

test('validateModel names the field and the limit', () => {
  validateModel(mlp);
  validateModel(gpt);
  assert.throws(
    () => validateModel({ ...mlp, context: 65 }),
    /^RangeError: model\.context must be an integer in \[1, 64\], got 65$/,
  );
  assert.throws(
    () => validateModel({ ...gpt, heads: 3 }),
    /model\.width \(8\) must be divisible by model\.heads \(3\)/,
  );
  assert.throws(
    () => validateModel({ ...gpt, width: 256, heads: 1 }),
    /model\.heads: head size model\.width \/ model\.heads = 256 is over the attention kernel's limit of 128/,
  );
  assert.throws(
    () => validateModel({ ...gpt, lowRank: { rank: 9 } }),
    /model\.lowRank\.rank must be an integer in \[1, 8\]/,
  );
  assert.throws(
    () => validateModel({ ...mlp, type: 'rnn' } as unknown as ModelConfig),
    /model\.type must be one of "mlp", "gpt", got "rnn"/,
  );
});

test('parseModelConfig reads both families back from JSON and refuses stray or missing fields', () => {
  const low: ModelConfig = { ...gpt, layers: 3, lowRank: { rank: 2, layers: 'middle' } };
  for (const cfg of [mlp, gpt, low]) assert.deepEqual(parseModelConfig(JSON.parse(JSON.stringify(cfg))), cfg);
  assert.throws(
    () => parseModelConfig({ ...mlp, layers: 2 }),
    /unknown field "model\.layers" for model\.type "mlp" \(allowed: type, vocab, context, embed, hidden\)/,
  );
  assert.throws(() => parseModelConfig({ ...gpt, embed: 2 }), /unknown field "model\.embed" for model\.type "gpt"/);
  assert.throws(() => parseModelConfig({ ...gpt, lowRank: { rank: 2, r: 1 } }), /unknown field "model\.lowRank\.r"/);
  const { heads: _, ...noHeads } = gpt;
  assert.throws(() => parseModelConfig(noHeads), /model\.heads must be an integer/);
  assert.throws(
    () => parseModelConfig({ ...gpt, tiedEmbeddings: 'yes' }),
    /model\.tiedEmbeddings must be true or false/,
  );
  assert.throws(() => parseModelConfig(null), /model must be an object, got null/);
});

test('GPT batches on real text: B × context tokens, targets are the tokens shifted by one', () => {
  const B = 6;
  const b = modelSampleBatch(gpt, stream, B, new Rng(2));
  assert.equal(b.tokens.length, B * gpt.context);
  assert.equal(b.targets.length, B * gpt.context);
  for (let r = 0; r < B; r++) {
    const row = tok.decode(b.tokens.subarray(r * 8, r * 8 + 8));
    const next = tok.decode(b.targets.subarray(r * 8, r * 8 + 8));
    assert.equal(next.slice(0, 7), row.slice(1), `row ${r}: "${row}" → "${next}"`);
    assert.ok(TEXT.includes(row + next.slice(7)), `row ${r} and its last target are a piece of the text`);
  }
  // The MLP's batches are windows with one target each.
  const m = modelSampleBatch(mlp, stream, B, new Rng(2));
  assert.equal(m.tokens.length, B * mlp.context);
  assert.equal(m.targets.length, B);
  // Evaluation: about maxTargets predictions either way.
  const e = modelEvalBatch(gpt, stream, 64);
  assert.equal(e.tokens.length, 64);
  assert.equal(tok.decode(e.tokens.subarray(0, 8)), TEXT.slice(0, 8));
  assert.equal(tok.decode(e.targets.subarray(0, 8)), TEXT.slice(1, 9));
  assert.equal(modelEvalBatch(gpt, stream, 3).tokens.length, 8, 'at least one sequence');
  assert.equal(modelEvalBatch(mlp, stream, 64).targets.length, 64);
});

test('CPU loss and next-token logits go to the family’s reference', () => {
  const pg = gptInit(gpt, 7);
  const pm = mlpInit(mlp, 7);
  const bg = modelEvalBatch(gpt, stream, 40);
  const bm = modelEvalBatch(mlp, stream, 40);
  assert.equal(modelLoss(gpt, pg, bg), gptLoss(gpt, pg, bg.tokens, bg.targets, 5));
  assert.equal(modelLoss(mlp, pm, bm), mlpLoss(mlp, pm, bm.tokens, bm.targets));
  assert.throws(
    () => modelLoss(gpt, pg, { tokens: bg.tokens.subarray(0, 12), targets: bg.targets.subarray(0, 12) }),
    /whole sequences of 8 tokens/,
  );
  // GPT: the last position's row of gptLogits; a longer context is cropped to the last 8 tokens.
  const ctx = stream.subarray(0, 5);
  assert.deepEqual(modelNextLogits(gpt, pg, ctx), gptLogits(gpt, pg, ctx, 1).subarray(4 * V, 5 * V));
  const long = stream.subarray(0, 20);
  assert.deepEqual(modelNextLogits(gpt, pg, long), modelNextLogits(gpt, pg, long.subarray(12)));
  assert.deepEqual(modelNextLogits(mlp, pm, long), mlpLogits(mlp, pm, long.subarray(15)));
  assert.throws(
    () => modelNextLogits(mlp, pm, ctx.subarray(0, 3)),
    /exactly 5 tokens \(model\.context\), got 3; pad the prompt/,
  );
  assert.throws(() => modelNextLogits(gpt, pg, new Int32Array(0)), /at least one token/);
});

test('modelGenerate: greedy follows the argmax with a cropped window; seeds reproduce; the pad is not returned', async () => {
  const p = gptInit(gpt, 3);
  const nl = tok.encode('\n')[0];
  const out = await modelGenerate(gpt, p, new Int32Array(0), 12, { temperature: 0, seed: 1 }, nl);
  assert.equal(out.length, 12);
  const ids = [nl];
  for (let i = 0; i < 12; i++) ids.push(argmax(modelNextLogits(gpt, p, Int32Array.from(ids.slice(-8)))));
  assert.deepEqual(Array.from(out), ids.slice(1));
  const prompt = tok.encode('Shall I');
  const a = await modelGenerate(gpt, p, prompt, 10, { temperature: 1, topK: 5, seed: 9 }, nl);
  assert.deepEqual(await modelGenerate(gpt, p, prompt, 10, { temperature: 1, topK: 5, seed: 9 }, nl), a);
  // The MLP is padded to its context on the left.
  const m = await modelGenerate(mlp, mlpInit(mlp, 1), tok.encode('Sh'), 4, { temperature: 0, seed: 1 }, nl);
  assert.equal(m.length, 4);
  await assert.rejects(
    modelGenerate(gpt, p, prompt, 1, { temperature: 0, seed: 1 }, V),
    /pad token \d+ is outside the vocabulary/,
  );
});

test(
  'createTrainer builds the family’s GPU trainer, whose loss matches the CPU reference',
  { timeout: 120_000 },
  async () => {
    const device = await testDevice();
    for (const [cfg, batch, T] of [
      [mlp, 16, MlpTrainer],
      [gpt, 3, GptTrainer],
    ] as const) {
      const trainer = await createTrainer(device, cfg, batch, { gradClip: 1 });
      try {
        assert.ok(trainer instanceof T, `${cfg.type}: ${T.name}`);
        assert.equal(trainer.paramCount, modelParamCount(cfg));
        const params = modelInit(cfg, 5);
        trainer.setParams(params);
        const b = modelSampleBatch(cfg, stream, batch, new Rng(4));
        const gpuLoss = await trainer.loss(b.tokens, b.targets);
        const cpuLoss = modelLoss(cfg, params, b);
        assert.ok(Math.abs(gpuLoss - cpuLoss) < 1e-4 * cpuLoss, `${cfg.type}: GPU loss ${gpuLoss} vs CPU ${cpuLoss}`);
        // A step on the batch lowers its loss.
        await trainer.step(b.tokens, b.targets, { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
        assert.ok((await trainer.loss(b.tokens, b.targets)) < gpuLoss, `${cfg.type}: one step lowers the batch loss`);
      } finally {
        trainer.destroy();
      }
    }
    await assert.rejects(createTrainer(device, { ...gpt, width: 256, heads: 1 }, 2), /head size/);
  },
);
