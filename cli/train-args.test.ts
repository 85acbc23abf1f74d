import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JOB_FLAGS, jobFlagUsage, parseTrainArgs } from './train-args';
import { DEFAULT_GPT_MODEL, DEFAULT_JOB, DEFAULT_MLP_MODEL } from '../coordinator/job-spec';

test('train flags: MLP by default, GPT with its fields, defaults from the job spec', () => {
  const m = parseTrainArgs([]);
  assert.deepEqual(m.model, DEFAULT_MLP_MODEL);
  assert.equal(m.gradClip, 0);
  assert.equal(m.batch, 64);
  assert.equal(m.lowRankAt, undefined);
  assert.equal(m.logEvery, 40, 'progress every fifth of --eval-every (200) by default');
  assert.equal(parseTrainArgs(['--eval-every', '7']).logEvery, 2);
  assert.equal(parseTrainArgs(['--log-every', '0']).logEvery, 0);
  assert.deepEqual(
    [m.source, m.maxBytes, m.lr, m.seed, m.valFraction],
    [
      DEFAULT_JOB.data.source,
      DEFAULT_JOB.data.maxBytes,
      DEFAULT_JOB.train.lr,
      DEFAULT_JOB.train.seed,
      DEFAULT_JOB.data.valFraction,
    ],
  );
  assert.throws(() => parseTrainArgs(['--log-every=-1']), /--log-every must be an integer in \[0, /);
  const g = parseTrainArgs(['--model', 'gpt', '--data', 'shared:tinyshakespeare', '--batch', '16']);
  assert.deepEqual(g.model, DEFAULT_GPT_MODEL);
  assert.equal(g.gradClip, 1, 'the GPT clips at 1 unless told');
  assert.equal(g.source, 'shared:tinyshakespeare');
  const full = parseTrainArgs([
    '--model',
    'gpt',
    '--context',
    '64',
    '--layers',
    '4',
    '--heads',
    '4',
    '--width',
    '128',
    '--untied',
    '--grad-clip',
    '0.5',
    '--lowrank-at',
    '500',
    '--cuttlefish',
    '--steps',
    '2000',
  ]);
  assert.deepEqual(full.model, { type: 'gpt', context: 64, layers: 4, heads: 4, width: 128, tiedEmbeddings: false });
  assert.deepEqual(full.lowRankAt, { step: 500, rank: 'cuttlefish', layers: 'middle' });
  assert.equal(full.gradClip, 0.5);
  // --rank without --lowrank-at: low rank from the start.
  const low = parseTrainArgs(['--model', 'gpt', '--rank', '8', '--lowrank-layers', 'all']);
  assert.deepEqual(low.model.type === 'gpt' && low.model.lowRank, { rank: 8, layers: 'all' });
  assert.deepEqual(
    parseTrainArgs(['--model', 'gpt', '--lowrank-at', '10', '--rank', '4', '--lowrank-layers', 'all']).lowRankAt,
    { step: 10, rank: 4, layers: 'all' },
  );
});

test('train flags: mistakes name the flag and the rule', () => {
  const cases: [string[], RegExp][] = [
    [['--model', 'rnn'], /^--model must be "mlp" or "gpt", got "rnn"$/],
    [
      ['--model', 'gpt', '--width', '30', '--heads', '4'],
      /^--width: model\.width \(30\) must be divisible by model\.heads \(4\)$/,
    ],
    [['--model', 'gpt', '--layers', '97'], /^--layers: model\.layers must be an integer in \[1, 96\], got 97$/],
    [['--model', 'gpt', '--layers', 'two'], /^--layers must be an integer/],
    [['--model', 'gpt', '--embed', '8'], /^--embed: model\.embed is an MLP field; it needs model\.type "mlp"/],
    [['--layers', '2'], /^--layers: model\.layers is a GPT field; it needs model\.type "gpt"/],
    [['--context', '65'], /^--context: model\.context must be an integer in \[1, 64\], got 65$/],
    [
      ['--model', 'gpt', '--rank', '4'],
      /^--lowrank-layers: model\.lowRank\.layers 'middle' keeps the first and last blocks full rank, so it needs model\.layers ≥ 3, got 2$/,
    ],
    [
      ['--model', 'gpt', '--cuttlefish'],
      /^--cuttlefish picks the rank at the switch to low rank; it needs --lowrank-at STEP$/,
    ],
    [
      ['--model', 'gpt', '--lowrank-at', '10', '--cuttlefish', '--rank', '3'],
      /^--cuttlefish chooses the rank; leave out --rank$/,
    ],
    [['--model', 'gpt', '--lowrank-at', '10'], /^--lowrank-at STEP needs the rank: --rank R or --cuttlefish$/],
    [['--model', 'gpt', '--lowrank-layers', 'all'], /^--lowrank-layers needs --rank R/],
    [
      ['--model', 'gpt', '--lowrank-at', '10', '--rank', '65', '--lowrank-layers', 'all'],
      /^--rank: model\.lowRank\.rank must be an integer in \[1, 64\] \(the width\), got 65$/,
    ],
    [
      ['--model', 'gpt', '--rank', '4', '--lowrank-layers', 'some'],
      /^--lowrank-layers: model\.lowRank\.layers must be one of "middle", "all", got "some"$/,
    ],
    [['--model', 'gpt', '--tied', '--untied'], /^--tied and --untied contradict each other; give one$/],
    [['--model', 'gpt', '--grad-clip=-1'], /^--grad-clip must be a number in \[0, 1000\], got "-1"$/],
    [
      ['--data', 'http://x'],
      /^--data must be "builtin:cmudict", "shared:<name>", "file:<path>" or "upload:<id>", got "http:\/\/x"$/,
    ],
    [['--seed=-1'], /^--seed must be an integer in \[0, 4294967295\], got "-1"$/],
    [['--lr', '0'], /^--lr must be a number in \(0, 1\], got "0"$/],
    [['--batch', '0'], /^--batch must be an integer in \[1, 4096\], got "0"$/],
    [['--nope'], /Unknown option '--nope'/],
  ];
  for (const [args, re] of cases)
    assert.throws(
      () => parseTrainArgs(args),
      (e: unknown) => (assert.match((e as Error).message, re, args.join(' ')), true),
    );
});

test('job-field flags take range, default and help from the schema', () => {
  const usage = jobFlagUsage();
  assert.match(usage, /--batch: an integer in \[1, 4096\] \(default 64\); examples per step/);
  assert.match(usage, /--grad-clip: a number in \[0, 1000\] \(default `1` for a GPT/);
  assert.match(usage, /--hidden: an integer in \[1, 4096\] \(default 128\)/);
  assert.equal(usage.split('\n').length, Object.keys(JOB_FLAGS).length);
});
