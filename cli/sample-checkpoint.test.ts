import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeCheckpoint } from '../coordinator/checkpoint';
import { sampleFromCheckpoint } from './sample-checkpoint';
import { mlpInit } from '../src/model/mlp-spec';
import { gptInit } from '../src/model/gpt-spec';
import { modelNextLogits, type GptModelConfig, type MlpModelConfig } from '../src/model/model';
import { mlpLogits } from '../src/model/mlp-cpu';
import { argmax } from '../src/model/sample';

test('sampling from a checkpoint: greedy follows the model’s argmax, seeds reproduce, bad prompts are named', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'starling-sample-'));
  try {
    const vocab = ['\n', ' ', 'a', 'b', 'c', 'd'];
    const cfg: MlpModelConfig = { type: 'mlp', vocab: vocab.length, context: 3, embed: 4, hidden: 9 };
    const params = mlpInit(cfg, 21);
    const path = await writeCheckpoint(dir, 'job1', cfg, 4, params, { vocab: JSON.stringify(vocab) });
    const greedy = await sampleFromCheckpoint({ checkpoint: path, prompt: 'ab', tokens: 12, temperature: 0, seed: 1 });
    assert.equal(greedy.version, '4');
    assert.equal(greedy.text.length, 2 + 12);
    // Re-derive the greedy continuation from the CPU model directly.
    const ids = ['\n', 'a', 'b'].map((c) => vocab.indexOf(c));
    let expected = 'ab';
    for (let i = 0; i < 12; i++) {
      const next = argmax(mlpLogits(cfg, params, Int32Array.from(ids.slice(-3))));
      ids.push(next);
      expected += vocab[next];
    }
    assert.equal(greedy.text, expected);
    const a = await sampleFromCheckpoint({ checkpoint: path, prompt: 'c', tokens: 30, temperature: 1, seed: 9 });
    const b = await sampleFromCheckpoint({ checkpoint: path, prompt: 'c', tokens: 30, temperature: 1, seed: 9 });
    assert.equal(a.text, b.text);
    assert.ok([...a.text].every((ch) => vocab.includes(ch)));
    await assert.rejects(
      sampleFromCheckpoint({ checkpoint: path, prompt: 'z', tokens: 1, temperature: 0, seed: 1 }),
      /"z"/,
    );
    await assert.rejects(
      sampleFromCheckpoint({
        checkpoint: join(dir, 'missing.safetensors'),
        prompt: '',
        tokens: 1,
        temperature: 0,
        seed: 1,
      }),
      /ENOENT|missing/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sampling from a GPT checkpoint: greedy follows the model’s argmax over a cropped window; temperature is seeded', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'starling-sample-'));
  try {
    const vocab = ['\n', ' ', 'a', 'b', 'c'];
    const cfg: GptModelConfig = {
      type: 'gpt',
      vocab: vocab.length,
      context: 4,
      layers: 1,
      heads: 2,
      width: 8,
      tiedEmbeddings: true,
    };
    // Larger weights than the init so that the argmax depends on the context.
    const params = gptInit(cfg, 5).map((v) => v * 40);
    const path = await writeCheckpoint(dir, 'g', cfg, 3, params, { vocab: JSON.stringify(vocab) });
    const greedy = await sampleFromCheckpoint({
      checkpoint: path,
      prompt: 'abcab',
      tokens: 10,
      temperature: 0,
      seed: 1,
    });
    assert.deepEqual(greedy.model, cfg);
    assert.equal(greedy.version, '3');
    const ids = Array.from('abcab', (c) => vocab.indexOf(c));
    let expected = 'abcab';
    for (let i = 0; i < 10; i++) {
      const next = argmax(modelNextLogits(cfg, params, Int32Array.from(ids.slice(-4))));
      ids.push(next);
      expected += vocab[next];
    }
    assert.equal(greedy.text, expected);
    // An empty prompt starts from a newline that is not part of the text.
    const empty = await sampleFromCheckpoint({ checkpoint: path, prompt: '', tokens: 7, temperature: 0, seed: 1 });
    assert.equal(empty.text.length, 7);
    const a = await sampleFromCheckpoint({
      checkpoint: path,
      prompt: 'b',
      tokens: 25,
      temperature: 1.5,
      topK: 3,
      seed: 4,
    });
    assert.equal(
      a.text,
      (await sampleFromCheckpoint({ checkpoint: path, prompt: 'b', tokens: 25, temperature: 1.5, topK: 3, seed: 4 }))
        .text,
    );
    assert.notEqual(
      a.text,
      (await sampleFromCheckpoint({ checkpoint: path, prompt: 'b', tokens: 25, temperature: 1.5, topK: 3, seed: 5 }))
        .text,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
