import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_GPT_MODEL,
  DEFAULT_JOB,
  DEFAULT_MLP_MODEL,
  JobSpecError,
  jobModelConfig,
  parseJobSpec,
} from './job-spec';
import { validateModel } from '../src/model/model';
import { validateMlpConfig } from '../src/model/mlp-spec';

function expectSpecError(input: unknown, field: string, pattern: RegExp): void {
  assert.throws(
    () => parseJobSpec(input),
    (e: unknown) => {
      assert.ok(e instanceof JobSpecError, `expected JobSpecError, got ${String(e)}`);
      assert.equal(e.field, field);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

test('an empty spec (or none) gives the defaults, as a fresh copy', () => {
  assert.deepEqual(parseJobSpec({}), DEFAULT_JOB);
  assert.deepEqual(parseJobSpec(undefined), DEFAULT_JOB);
  const a = parseJobSpec({});
  assert.notEqual(a.train, DEFAULT_JOB.train);
  a.train.lr = 0.5; // the result is the caller's to change
  assert.notEqual(DEFAULT_JOB.train.lr, 0.5);
  assert.throws(() => {
    (DEFAULT_JOB.train as { lr: number }).lr = 1;
  }, TypeError);
});

test('the defaults are themselves valid and the models pass the model validation', () => {
  assert.deepEqual(parseJobSpec(JSON.parse(JSON.stringify(DEFAULT_JOB))), DEFAULT_JOB);
  assert.equal(DEFAULT_JOB.model, DEFAULT_MLP_MODEL, 'the default job is the MLP');
  const { context, embed, hidden } = DEFAULT_MLP_MODEL;
  validateMlpConfig({ vocab: 64, context, embed, hidden });
  validateModel(jobModelConfig(DEFAULT_GPT_MODEL, 65));
});

test('given fields are kept, missing ones in the same section are defaulted', () => {
  const s = parseJobSpec({
    name: 'tiny',
    model: { context: 4 },
    train: { lr: 0.01, seed: 0 },
    data: { source: 'upload:abc_12' },
  });
  assert.equal(s.name, 'tiny');
  assert.equal(s.model.context, 4);
  assert.equal(s.model.type === 'mlp' && s.model.hidden, DEFAULT_MLP_MODEL.hidden);
  assert.equal(s.train.lr, 0.01);
  assert.equal(s.train.seed, 0);
  assert.equal(s.train.batch, DEFAULT_JOB.train.batch);
  assert.equal(s.data.source, 'upload:abc_12');
  assert.equal(s.data.valFraction, DEFAULT_JOB.data.valFraction);
  assert.equal(parseJobSpec({ data: { source: 'file:/tmp/x y.txt' } }).data.source, 'file:/tmp/x y.txt');
});

test('malformed roots and sections are rejected', () => {
  expectSpecError(null, '(root)', /job spec must be a JSON object, got null/);
  expectSpecError([], '(root)', /got an array/);
  expectSpecError('{"name":"x"}', '(root)', /must be a JSON object/);
  expectSpecError(42, '(root)', /got 42/);
  expectSpecError({ model: 'mlp' }, 'model', /model must be an object, got "mlp"/);
  expectSpecError({ train: [1] }, 'train', /train must be an object, got an array/);
  expectSpecError({ data: null }, 'data', /data must be an object, got null/);
});

test('unknown fields are rejected by name', () => {
  expectSpecError(
    { learningRate: 1 },
    'learningRate',
    /unknown field "learningRate" \(allowed: name, model, data, train\)/,
  );
  expectSpecError(
    { train: { learningRate: 1 } },
    'train.learningRate',
    /unknown field "train.learningRate" \(allowed: rounds,/,
  );
  expectSpecError({ model: { vocab: 50 } }, 'model.vocab', /unknown field "model.vocab"/);
  expectSpecError({ data: { path: 'x' } }, 'data.path', /unknown field "data.path"/);
});

test('wrong types are rejected with the field and the allowed range', () => {
  expectSpecError({ train: { lr: '0.1' } }, 'train.lr', /^train.lr must be a number in \(0, 1\], got "0.1"$/);
  expectSpecError({ train: { batch: true } }, 'train.batch', /train.batch must be an integer in \[1, 4096\], got true/);
  expectSpecError({ train: { lr: null } }, 'train.lr', /got null/);
  expectSpecError({ name: 5 }, 'name', /name must be a string of 1..80 characters, got 5/);
  expectSpecError({ model: { type: 'rnn' } }, 'model.type', /model.type must be one of "mlp", "gpt", got "rnn"/);
  expectSpecError({ model: { type: null } }, 'model.type', /model.type must be one of "mlp", "gpt", got null/);
  expectSpecError({ data: { source: 7 } }, 'data.source', /data.source must be a string/);
});

test('out-of-range values are rejected, at and just past each bound', () => {
  expectSpecError({ train: { lr: -1 } }, 'train.lr', /^train.lr must be a number in \(0, 1\], got -1$/);
  expectSpecError({ train: { lr: 0 } }, 'train.lr', /got 0$/);
  assert.equal(parseJobSpec({ train: { lr: 1 } }).train.lr, 1);
  expectSpecError({ train: { lr: 1.0001 } }, 'train.lr', /got 1.0001/);
  expectSpecError({ train: { beta1: 1 } }, 'train.beta1', /train.beta1 must be a number in \[0, 1\), got 1/);
  assert.equal(parseJobSpec({ train: { beta2: 0 } }).train.beta2, 0);
  expectSpecError({ train: { batch: 0 } }, 'train.batch', /\[1, 4096\], got 0/);
  expectSpecError({ train: { batch: 4097 } }, 'train.batch', /got 4097/);
  expectSpecError({ train: { batch: 2.5 } }, 'train.batch', /got 2.5/);
  expectSpecError({ train: { seed: -1 } }, 'train.seed', /\[0, 4294967295\]/);
  expectSpecError({ train: { roundDeadlineMs: 999 } }, 'train.roundDeadlineMs', /\[1000, 3600000\], got 999/);
  expectSpecError({ train: { weightDecay: Number.NaN } }, 'train.weightDecay', /got NaN/);
  expectSpecError({ train: { outerLr: Number.POSITIVE_INFINITY } }, 'train.outerLr', /got Infinity/);
  expectSpecError({ model: { context: 65 } }, 'model.context', /model.context must be an integer in \[1, 64\], got 65/);
  expectSpecError({ model: { embed: 0 } }, 'model.embed', /\[1, 512\]/);
  expectSpecError({ model: { hidden: 4097 } }, 'model.hidden', /\[1, 4096\]/);
  expectSpecError(
    { data: { valFraction: 0 } },
    'data.valFraction',
    /data.valFraction must be a number in \(0, 0.5\], got 0/,
  );
  expectSpecError({ data: { valFraction: 0.6 } }, 'data.valFraction', /got 0.6/);
  expectSpecError({ data: { maxBytes: 100 } }, 'data.maxBytes', /\[1024, 33554432\], got 100/);
  expectSpecError({ name: '' }, 'name', /1..80 characters, got ""/);
  expectSpecError({ name: 'x'.repeat(81) }, 'name', /1..80 characters, got "xxx/);
  expectSpecError({ name: 'a\nb' }, 'name', /name must be no control characters/);
});

test('data.source must name a known kind of source', () => {
  assert.equal(parseJobSpec({ data: { source: 'shared:tinyshakespeare' } }).data.source, 'shared:tinyshakespeare');
  for (const bad of [
    '',
    'http://example.com/x.txt',
    'builtin:shakespeare',
    'file:',
    'upload:../etc',
    'upload:',
    'shared:../x',
    'shared:',
  ]) {
    expectSpecError({ data: { source: bad } }, 'data.source', /data.source must be/);
  }
});

test('long offending values are shortened in the message', () => {
  const e = (() => {
    try {
      parseJobSpec({ train: { lr: 'y'.repeat(10_000) } });
    } catch (err) {
      return err as Error;
    }
  })();
  assert.ok(e instanceof JobSpecError);
  assert.ok(e.message.length < 200, `message is ${e.message.length} chars`);
});

test('model.type "gpt" takes the GPT fields and defaults, and clips gradients at 1 by default', () => {
  const s = parseJobSpec({ model: { type: 'gpt' } });
  assert.deepEqual(s.model, DEFAULT_GPT_MODEL);
  assert.notEqual(s.model, DEFAULT_GPT_MODEL, 'a fresh copy');
  assert.equal(s.train.gradClip, 1);
  assert.equal(parseJobSpec({}).train.gradClip, 0, 'the MLP does not clip by default');
  assert.equal(
    parseJobSpec({ model: { type: 'gpt' }, train: { gradClip: 0 } }).train.gradClip,
    0,
    'gradClip 0 turns it off',
  );
  assert.equal(parseJobSpec({ train: { gradClip: 0.5 } }).train.gradClip, 0.5);
  expectSpecError(
    { train: { gradClip: -1 } },
    'train.gradClip',
    /^train.gradClip must be a number in \[0, 1000\], got -1$/,
  );
  const g = parseJobSpec({
    model: { type: 'gpt', context: 16, layers: 3, heads: 4, width: 32, tiedEmbeddings: false, lowRank: { rank: 8 } },
  }).model;
  assert.deepEqual(g, {
    type: 'gpt',
    context: 16,
    layers: 3,
    heads: 4,
    width: 32,
    tiedEmbeddings: false,
    lowRank: { rank: 8, layers: 'middle' },
  });
  // With the data's vocabulary it is a valid model for the facade.
  validateModel(jobModelConfig(g, 65));
  assert.equal(parseJobSpec({ model: { type: 'gpt', lowRank: { rank: 4, layers: 'all' } } }).model.type, 'gpt');
});

test('a field of the other model family is named as such', () => {
  expectSpecError(
    { model: { layers: 2 } },
    'model.layers',
    /^model.layers is a GPT field; it needs model.type "gpt" \(model.type is "mlp"; allowed: type, context, embed, hidden\)$/,
  );
  expectSpecError({ model: { type: 'mlp', lowRank: { rank: 2 } } }, 'model.lowRank', /model.lowRank is a GPT field/);
  expectSpecError(
    { model: { type: 'gpt', hidden: 64 } },
    'model.hidden',
    /^model.hidden is an MLP field; it needs model.type "mlp" \(model.type is "gpt"; allowed: type, context, layers, heads, width, tiedEmbeddings, lowRank\)$/,
  );
  expectSpecError(
    { model: { type: 'gpt', depth: 2 } },
    'model.depth',
    /unknown field "model.depth" for model.type "gpt" \(allowed: type, context, layers/,
  );
});

test('GPT fields: each limit, and the cross-field rules, name the field', () => {
  const gpt = (m: Record<string, unknown>) => ({ model: { type: 'gpt', ...m } });
  expectSpecError(gpt({ layers: 0 }), 'model.layers', /^model.layers must be an integer in \[1, 96\], got 0$/);
  expectSpecError(gpt({ heads: 129 }), 'model.heads', /\[1, 128\], got 129/);
  expectSpecError(gpt({ width: 8193 }), 'model.width', /\[1, 8192\], got 8193/);
  expectSpecError(gpt({ context: 4097 }), 'model.context', /\[1, 4096\], got 4097/);
  expectSpecError(
    gpt({ tiedEmbeddings: 'yes' }),
    'model.tiedEmbeddings',
    /^model.tiedEmbeddings must be true or false, got "yes"$/,
  );
  expectSpecError(
    gpt({ width: 30, heads: 4 }),
    'model.width',
    /model.width \(30\) must be divisible by model.heads \(4\)/,
  );
  expectSpecError(
    gpt({ width: 256, heads: 1 }),
    'model.heads',
    /head size model.width \/ model.heads = 256 is over the attention kernel's limit of 128/,
  );
  expectSpecError(
    gpt({ lowRank: { rank: 65 } }),
    'model.lowRank.rank',
    /model.lowRank.rank must be an integer in \[1, 64\] \(the width\), got 65/,
  );
  expectSpecError(
    gpt({ lowRank: { rank: 0 } }),
    'model.lowRank.rank',
    /model.lowRank.rank must be an integer in \[1, 8192\], got 0/,
  );
  expectSpecError(gpt({ lowRank: {} }), 'model.lowRank.rank', /model.lowRank.rank is required/);
  expectSpecError(gpt({ lowRank: 4 }), 'model.lowRank', /model.lowRank must be an object, got 4/);
  expectSpecError(
    gpt({ lowRank: { rank: 4, layers: 'some' } }),
    'model.lowRank.layers',
    /must be one of "middle", "all", got "some"/,
  );
  expectSpecError(
    gpt({ lowRank: { rank: 4, r: 2 } }),
    'model.lowRank.r',
    /unknown field "model.lowRank.r" \(allowed: rank, layers\)/,
  );
  // The default GPT has 2 layers: 'middle' would factorise nothing.
  expectSpecError(gpt({ lowRank: { rank: 4 } }), 'model.lowRank.layers', /needs model.layers ≥ 3, got 2/);
});

test('train.codec/downCodec/outer: canonical names, downCodec follows codec, DiLoCo defaults follow localSteps', () => {
  const s = parseJobSpec({ train: { codec: 'topk:0.010/q2', localSteps: 50 } });
  assert.equal(s.train.codec, 'topk:0.01/q2');
  assert.equal(s.train.downCodec, 'topk:0.01/q2');
  // Sparse pseudo-gradients: lr 1, no momentum (error feedback carries the rest); dense ones: DiLoCo's.
  assert.deepEqual([s.train.outerLr, s.train.outerMomentum], [1, 0]);
  const q = parseJobSpec({ train: { codec: 'q4', localSteps: 50 } });
  assert.deepEqual([q.train.outerLr, q.train.outerMomentum], [0.7, 0.9]);
  const dp = parseJobSpec({ train: { codec: 'f32', downCodec: 'f16', localSteps: 1 } });
  assert.deepEqual([dp.train.downCodec, dp.train.outerLr, dp.train.outerMomentum], ['f16', 1, 0]);
  const given = parseJobSpec({ train: { localSteps: 1, outerLr: 0.5, outerMomentum: 0.5 } });
  assert.deepEqual([given.train.outerLr, given.train.outerMomentum], [0.5, 0.5]);
  const bad = (train: Record<string, unknown>, re: RegExp) =>
    assert.throws(
      () => parseJobSpec({ train }),
      (e: unknown) => e instanceof JobSpecError && re.test(e.message),
    );
  bad({ codec: 'q3' }, /train\.codec: codec "q3": unknown codec name "q3".*accepted forms/);
  bad({ downCodec: 'topk:2' }, /train\.downCodec: .*fraction "2" must be a decimal number in \(0, 1\]/);
  bad({ codec: 7 }, /train\.codec must be a string of 1\.\.64 characters, got 7/);
  bad({ outerMomentum: 1 }, /train\.outerMomentum must be a number in \[0, 1\), got 1/);
  bad({ errorDecay: -0.1 }, /train\.errorDecay must be a number in \[0, 1\], got -0.1/);
});

test('train.aggregator: clipped-mean by default, canonical names, errors naming the field, value and forms', () => {
  assert.equal(parseJobSpec({}).train.aggregator, 'clipped-mean');
  assert.equal(parseJobSpec({ train: { aggregator: 'clipped-mean:2' } }).train.aggregator, 'clipped-mean');
  assert.equal(parseJobSpec({ train: { aggregator: 'trimmed-mean:0.20' } }).train.aggregator, 'trimmed-mean:0.2');
  assert.equal(parseJobSpec({ train: { aggregator: 'median' } }).train.aggregator, 'median');
  const bad = (aggregator: unknown, re: RegExp) =>
    assert.throws(
      () => parseJobSpec({ train: { aggregator } }),
      (e: unknown) => e instanceof JobSpecError && e.field === 'train.aggregator' && re.test(e.message),
    );
  // The schema's pattern catches the shape, parseAggregator the ranges.
  bad('avg', /train\.aggregator must be .*`mean`, `clipped-mean`.*got "avg"/);
  bad(
    'trimmed-mean:0.5',
    /train\.aggregator: "trimmed-mean:0\.5" has a trimmed fraction outside \[0, 0\.5\); accepted: /,
  );
  bad('clipped-mean:0.5', /train\.aggregator: "clipped-mean:0\.5" has τ outside \[1, 100\]/);
});
