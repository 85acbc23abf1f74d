import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trainLocal, type LocalTrainOptions } from './train-local';
import { readModelCheckpoint, readSafetensors } from '../coordinator/checkpoint';
import { sampleFromCheckpoint } from './sample-checkpoint';
import { gptParamSpecs } from '../src/model/gpt-spec';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'starling-train-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test(
  'single-donor training on Node WebGPU lowers validation loss and writes a loadable checkpoint',
  { timeout: 120_000 },
  async (t) => {
    const dir = tempDir(t);
    // A small corpus with strong structure: repeated words in varying order.
    const words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon'];
    let text = '';
    for (let i = 0; i < 800; i++) text += `${words[(i * 7) % 5]} ${words[(i * 3) % 5]}\n`;
    writeFileSync(join(dir, 'corpus.txt'), text);
    const lines: string[] = [];
    const r = await trainLocal({
      source: `file:${join(dir, 'corpus.txt')}`,
      maxBytes: 1_000_000,
      valFraction: 0.1,
      model: { type: 'mlp', context: 4, embed: 8, hidden: 32 },
      steps: 60,
      batch: 32,
      lr: 1e-2,
      warmup: 5,
      minLrRatio: 0.1,
      weightDecay: 0,
      gradClip: 0,
      evalEvery: 20,
      logEvery: 8,
      evalTargets: 256,
      seed: 3,
      out: join(dir, 'model.safetensors'),
      sampleTokens: 40,
      log: (l) => lines.push(l),
    });
    assert.ok(r.finalValLoss < 0.7 * r.initialValLoss, `val ${r.initialValLoss} → ${r.finalValLoss}`);
    assert.equal(lines.filter((l) => /^step +\d+ +val/.test(l)).length, 1 + 3);
    // Progress lines every 8 steps except where an evaluation line already stands (40).
    const progress = lines
      .filter((l) => /^step +\d+ +train \d\.\d{4} +lr [\d.e+-]+ +\d+ tok\/s$/.test(l))
      .map((l) => Number(l.split(/ +/)[1]));
    assert.deepEqual(progress, [8, 16, 24, 32, 48, 56]);
    assert.deepEqual(
      r.valLosses.map((v) => v.step),
      [0, 20, 40, 60],
    );
    assert.equal(r.tokens, 60 * 32, 'the MLP predicts one token per window');
    assert.ok(r.tokensPerSecond > 0 && r.gpuBytes > 0 && r.flopsPerToken > 0);
    assert.equal(r.sample.length, 40);
    const st = await readSafetensors(r.checkpoint, { requireFinite: true });
    assert.deepEqual(st.tensors.map((x) => x.name).sort(), [
      'embedding.weight',
      'hidden.bias',
      'hidden.weight',
      'out.bias',
      'out.weight',
    ]);
  },
);

/** A tiny GPT on a slice of the builtin corpus: small enough for a software GPU (~0.3 s a step). */
function tinyGpt(dir: string, over: Partial<LocalTrainOptions> = {}): LocalTrainOptions {
  return {
    source: 'builtin:cmudict',
    maxBytes: 20_000,
    valFraction: 0.1,
    model: { type: 'gpt', context: 16, layers: 1, heads: 2, width: 16, tiedEmbeddings: true },
    steps: 30,
    batch: 8,
    lr: 1e-2,
    warmup: 3,
    minLrRatio: 0.1,
    weightDecay: 0,
    gradClip: 1,
    evalEvery: 10,
    evalTargets: 256,
    seed: 2,
    out: join(dir, 'gpt.safetensors'),
    sampleTokens: 30,
    log: () => {},
    ...over,
  };
}

test(
  'a tiny GPT trains on every position, lowers validation loss, and its checkpoint samples',
  { timeout: 180_000 },
  async (t) => {
    const dir = tempDir(t);
    const lines: string[] = [];
    const r = await trainLocal(tinyGpt(dir, { log: (l) => lines.push(l) }));
    assert.ok(r.finalValLoss < 0.85 * r.initialValLoss, `val ${r.initialValLoss} → ${r.finalValLoss}`);
    assert.equal(r.tokens, 30 * 8 * 16, 'a GPT step trains on batch × context tokens');
    assert.equal(r.model.type, 'gpt');
    assert.equal(
      r.paramCount,
      gptParamSpecs(r.model as never).reduce((a, s) => a + s.size, 0),
    );
    assert.ok(r.flopsPerToken > 0 && r.tokensPerSecond > 0);
    assert.match(
      lines[1],
      /^GPT 1 layers × width 16, 2 heads, context 16, vocab \d+, tied embeddings: [\d,]+ params; [\d,]+ FLOPs\/token forward; 128 tokens\/step/,
    );
    assert.match(lines.at(-1)!, /^done: GPT .* FLOPs\/token forward; \d+ tok\/s .* val 0:\d\.\d{4} 10:/);
    assert.equal(r.sample.length, 30);
    const ck = await readModelCheckpoint(r.checkpoint);
    assert.deepEqual(ck.cfg, r.model);
    const greedy = await sampleFromCheckpoint({
      checkpoint: r.checkpoint,
      prompt: 'ABA',
      tokens: 20,
      temperature: 0,
      seed: 1,
    });
    assert.equal(greedy.text.length, 23);
    assert.ok(greedy.text.startsWith('ABA'));
    assert.deepEqual(
      greedy,
      await sampleFromCheckpoint({ checkpoint: r.checkpoint, prompt: 'ABA', tokens: 20, temperature: 0, seed: 9 }),
      'greedy ignores the seed',
    );
  },
);

test(
  'switching to low rank at a step: factorised checkpoint, fewer parameters, training goes on',
  { timeout: 180_000 },
  async (t) => {
    const dir = tempDir(t);
    const lines: string[] = [];
    const r = await trainLocal(
      tinyGpt(dir, {
        steps: 20,
        lowRankAt: { step: 10, rank: 4, layers: 'all' },
        log: (l) => lines.push(l),
        sampleTokens: 10,
      }),
    );
    assert.ok(r.lowRank, 'a conversion happened');
    assert.equal(r.lowRank.step, 10);
    assert.deepEqual(r.model.type === 'gpt' && r.model.lowRank, { rank: 4, layers: 'all' });
    // Each 16-wide Linear [out, in] goes from out·in to 4·(out + in) parameters.
    assert.ok(r.lowRank.paramsAfter < r.lowRank.paramsBefore, `${r.lowRank.paramsBefore} → ${r.lowRank.paramsAfter}`);
    assert.equal(r.paramCount, r.lowRank.paramsAfter);
    assert.ok(r.flopsPerToken < r.lowRank.flopsPerTokenBefore);
    assert.ok(Number.isFinite(r.lowRank.valLossAfter));
    assert.ok(r.finalValLoss < r.initialValLoss, `val ${r.initialValLoss} → ${r.finalValLoss}`);
    assert.ok(
      lines.some((l) =>
        /^step +10 +low rank 4 in all blocks: params \d+ → \d+, val \d\.\d{4} → \d\.\d{4}; AdamW restarted$/.test(l),
      ),
      lines.join('\n'),
    );
    const names = (await readSafetensors(r.checkpoint)).tensors.map((x) => x.name);
    assert.ok(names.includes('h.0.attn.c_attn.weight_u') && !names.includes('h.0.attn.c_attn.weight'));
    assert.deepEqual((await readModelCheckpoint(r.checkpoint)).cfg, r.model);

    // Cuttlefish picks the rank from the stable ranks at the switch (scaled by those at init).
    const c = await trainLocal(
      tinyGpt(dir, {
        steps: 4,
        evalEvery: 4,
        lowRankAt: { step: 2, rank: 'cuttlefish', layers: 'all' },
        sampleTokens: 0,
      }),
    );
    assert.ok(c.lowRank?.perLayer && c.lowRank.perLayer.length === 4, 'one entry per factorised Linear');
    assert.equal(c.lowRank.rank, Math.max(...c.lowRank.perLayer.map((p) => p.rank)));
    assert.ok(c.lowRank.rank >= 1 && c.lowRank.rank <= 16);
  },
);

test('bad low-rank switches are refused before any training', async () => {
  const o = tinyGpt(tmpdir());
  await assert.rejects(
    trainLocal({
      ...o,
      model: { type: 'mlp', context: 4, embed: 4, hidden: 8 },
      lowRankAt: { step: 5, rank: 2, layers: 'all' },
    }),
    /converts a GPT to low rank; the model is an MLP/,
  );
  await assert.rejects(
    trainLocal({ ...o, lowRankAt: { step: 30, rank: 2, layers: 'all' } }),
    /lowRankAt\.step \(--lowrank-at\) must be an integer in \[1, 29\]/,
  );
  await assert.rejects(
    trainLocal({ ...o, lowRankAt: { step: 5, rank: 17, layers: 'all' } }),
    /lowRankAt\.rank \(--rank\) must be an integer in \[1, 16\]/,
  );
  await assert.rejects(
    trainLocal({
      ...o,
      model: {
        type: 'gpt',
        context: 16,
        layers: 1,
        heads: 2,
        width: 16,
        tiedEmbeddings: true,
        lowRank: { rank: 2, layers: 'all' },
      },
      lowRankAt: { step: 5, rank: 2, layers: 'all' },
    }),
    /already low rank/,
  );
});
