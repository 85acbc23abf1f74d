import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validationTargets } from './job-runner';
import { modelFlopsPerToken, type ModelConfig } from '../src/model/model';

test('validation size: 2048 predictions, fewer for a GPT too costly to evaluate on the event loop', () => {
  const mlp: ModelConfig = { type: 'mlp', vocab: 40, context: 8, embed: 16, hidden: 128 };
  const tiny: ModelConfig = {
    type: 'gpt',
    vocab: 40,
    context: 16,
    layers: 1,
    heads: 2,
    width: 32,
    tiedEmbeddings: true,
  };
  const baby: ModelConfig = {
    type: 'gpt',
    vocab: 65,
    context: 64,
    layers: 4,
    heads: 4,
    width: 128,
    tiedEmbeddings: true,
  };
  const huge: ModelConfig = {
    type: 'gpt',
    vocab: 65,
    context: 1024,
    layers: 24,
    heads: 16,
    width: 1024,
    tiedEmbeddings: true,
  };
  assert.equal(validationTargets(mlp), 2048);
  assert.equal(validationTargets(tiny), 2048);
  const n = validationTargets(baby);
  assert.ok(n < 2048 && n * modelFlopsPerToken(baby) <= 3e8, `baby GPT: ${n} targets`);
  assert.equal(validationTargets(huge), 1, 'at least one (the facade rounds it up to one sequence)');
});
