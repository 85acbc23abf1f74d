// Pure parts of the benchmarks: statistics, GFLOP/s, argument parsing, table and docs rendering.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseOptions, splitArgs, UsageError, type OptionSpec } from './args';
import type { MatmulResults, MatmulSizeResult } from './matmul-types';
import {
  classifyBackend,
  formatTable,
  markdownTable,
  matmulRow,
  matmulSection,
  sectionEnd,
  sectionStart,
  upsertSection,
} from './report';
import {
  batchSize,
  defaultRepeats,
  gflops,
  matmulFlops,
  matmulTolerance,
  maxAbsDiff,
  median,
  mulberry32,
  randomMatrix,
} from './stats';

describe('stats', () => {
  it('median of odd and even counts, unsorted input left alone', () => {
    const xs = [5, 1, 3];
    assert.equal(median(xs), 3);
    assert.deepEqual(xs, [5, 1, 3]);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.equal(median([7]), 7);
    assert.throws(() => median([]), RangeError);
    assert.throws(() => median([1, NaN]), RangeError);
  });

  it('matmul flops and GFLOP/s', () => {
    assert.equal(matmulFlops(1024), 2 * 1024 ** 3);
    assert.equal(matmulFlops(2, 3, 4), 48);
    // 2·512³ = 268,435,456 flops in 1 s → 0.268 GFLOP/s
    assert.ok(Math.abs(gflops(matmulFlops(512), 1000) - 0.268435456) < 1e-12);
    assert.equal(gflops(2e9, 1000), 2);
    assert.throws(() => gflops(1, 0), RangeError);
  });

  it('maxAbsDiff never lets NaN or a length mismatch pass', () => {
    assert.equal(maxAbsDiff([1, 2, 3], [1, 2.5, 2]), 1);
    assert.equal(maxAbsDiff([1, NaN], [1, 2]), Infinity);
    assert.equal(maxAbsDiff([1], [1, 2]), Infinity);
    assert.equal(maxAbsDiff([], []), 0);
  });

  it('batch size: about target for the faster side, capped for the slower', () => {
    assert.equal(batchSize([10, 20], 200, 64, 4000), 20);
    assert.equal(batchSize([1, 2], 200, 64, 4000), 64);
    assert.equal(batchSize([100, 3000], 200, 64, 4000), 1);
    assert.equal(batchSize([5000, 6000], 200, 64, 4000), 1);
    assert.equal(batchSize([0, 0], 200, 64, 4000), 64);
  });

  it('default repeats shrink with size; tolerance grows with K', () => {
    assert.deepEqual([64, 256, 512, 1024, 2048].map(defaultRepeats), [7, 7, 5, 3, 3]);
    assert.ok(matmulTolerance(1024) > matmulTolerance(64));
    assert.ok(matmulTolerance(1024) < 0.1);
  });

  it('seeded random matrices are reproducible and in [-1, 1)', () => {
    const a = randomMatrix(1000, mulberry32(7));
    const b = randomMatrix(1000, mulberry32(7));
    assert.deepEqual(a, b);
    assert.ok(a.every((x) => x >= -1 && x < 1));
    assert.notDeepEqual(a, randomMatrix(1000, mulberry32(8)));
  });
});

describe('args', () => {
  const specs: OptionSpec[] = [
    { name: 'sizes', kind: 'ints', help: '' },
    { name: 'repeats', kind: 'int', help: '' },
    { name: 'warmup', kind: 'int', min: 0, help: '' },
    { name: 'target-ms', kind: 'number', help: '' },
    { name: 'out', kind: 'string', help: '' },
    { name: 'no-doc', kind: 'flag', help: '' },
  ];

  it('splits the bench name from its options', () => {
    assert.deepEqual(splitArgs(['matmul', '--repeats', '3']), {
      name: 'matmul',
      help: false,
      rest: ['--repeats', '3'],
    });
    assert.deepEqual(splitArgs(['--help']), { name: undefined, help: true, rest: [] });
    assert.deepEqual(splitArgs(['--sizes', '1']), { name: undefined, help: false, rest: ['--sizes', '1'] });
    assert.equal(splitArgs(['matmul', '-h']).help, true);
  });

  it('parses both --k v and --k=v, lists, flags', () => {
    assert.deepEqual(
      parseOptions(
        ['--sizes', '64,128, 256', '--repeats=3', '--no-doc', '--target-ms', '50.5', '--warmup', '0'],
        specs,
      ),
      {
        sizes: [64, 128, 256],
        repeats: 3,
        'no-doc': true,
        'target-ms': 50.5,
        warmup: 0,
      },
    );
    assert.deepEqual(parseOptions([], specs), {});
  });

  it('rejects unknown options, bad values and missing values with a UsageError', () => {
    for (const bad of [
      ['--nope'],
      ['--repeats', '0'],
      ['--repeats', '1.5'],
      ['--warmup', '-1'],
      ['--sizes', '64,x'],
      ['--sizes', ''],
      ['--repeats'],
      ['--repeats', '--no-doc'],
      ['--no-doc=1'],
      ['stray'],
    ]) {
      assert.throws(() => parseOptions(bad, specs), UsageError, bad.join(' '));
    }
  });
});

const sample = (over: Partial<MatmulSizeResult> = {}): MatmulSizeResult => ({
  size: 512,
  batch: 2,
  oursSamplesMs: [1000, 900, 1100],
  tfjsSamplesMs: [2000, 2100, 1900],
  maxAbsDiff: 1e-6,
  oursRefErr: 2e-6,
  tfjsRefErr: 2e-6,
  ...over,
});

describe('report', () => {
  it('a row takes medians, GFLOP/s and the ours/TF.js ratio', () => {
    const r = matmulRow(sample());
    assert.equal(r.oursMs, 1000);
    assert.equal(r.tfjsMs, 2000);
    assert.ok(Math.abs((r.oursGflops ?? 0) - 0.268435456) < 1e-12);
    assert.ok(Math.abs((r.ratio ?? 0) - 2) < 1e-12);
    // The common result fields: what, ours and theirs (GFLOP/s), ratio.
    assert.equal(r.what, `${r.size}³`);
    assert.equal(r.ours, r.oursGflops);
    assert.equal(r.theirs, r.tfjsGflops);
    assert.equal(r.valid, true);
    assert.equal(r.repeats, 3);
  });

  it('a side that is wrong posts no speed', () => {
    const broken = matmulRow(sample({ maxAbsDiff: 3, oursRefErr: 3 }));
    assert.equal(broken.valid, false);
    assert.equal(broken.oursGflops, null);
    assert.notEqual(broken.tfjsGflops, null);
    assert.equal(broken.ratio, null);
    const nan = matmulRow(sample({ maxAbsDiff: Infinity, oursRefErr: Infinity }));
    assert.equal(nan.oursGflops, null);
    // Both agree with the reference on samples but differ elsewhere: nobody gets a number.
    const split = matmulRow(sample({ maxAbsDiff: 1 }));
    assert.equal(split.valid, false);
    assert.equal(split.oursGflops, null);
    assert.equal(split.tfjsGflops, null);
  });

  it('the simple variant is a column of its own, posting no speed when it is wrong', () => {
    const r = matmulRow(sample({ variant: 'tuned', simpleSamplesMs: [4000, 3000, 5000], simpleRefErr: 1e-6 }));
    assert.equal(r.variant, 'tuned');
    assert.equal(r.simpleMs, 4000);
    assert.ok(Math.abs((r.simpleRatio ?? 0) - 0.5) < 1e-12);
    const wrong = matmulRow(sample({ variant: 'tuned', simpleSamplesMs: [4000], simpleRefErr: 1 }));
    assert.equal(wrong.simpleGflops, null);
    assert.equal(wrong.valid, true, 'a wrong reference column does not void the row');
    const old = matmulRow(sample());
    assert.equal(old.simpleMs, undefined, 'results from before variants have no simple column');
    const md = markdownTable([r, wrong, old]).split('\n');
    assert.match(md[2], /\| 512³ \| tuned \| 0\.268 \| 0\.134 \| 2\.00× \| 0\.067 \| 0\.50× \|/);
    assert.match(md[3], /\| FAIL \| — \|/);
    assert.match(md[4], /\| 512³ \| — \|/);
  });

  it('renders aligned text and Markdown tables', () => {
    const rows = [matmulRow(sample({ size: 64 })), matmulRow(sample({ maxAbsDiff: 2, oursRefErr: 2 }))];
    const text = formatTable(rows).split('\n');
    assert.equal(text.length, 4);
    assert.ok(
      text.every((l) => l.length === text[0].length),
      'columns aligned',
    );
    assert.match(text[2], /^64³ /);
    assert.match(text[3], /FAIL/);
    assert.match(text[3], /✗/);
    const md = markdownTable(rows).split('\n');
    assert.equal(md.length, 4);
    assert.match(md[1], /^\| --- \| ---: \|/);
    assert.match(md[2], /\| 2\.00× \|/);
    assert.match(md[0], /max \\\|diff\\\|/, 'pipes inside a cell are escaped');
    assert.equal(
      md[0].split(/(?<!\\)\|/).length,
      md[1].split('|').length,
      'header and separator have the same columns',
    );
  });

  it('classifies SwiftShader adapters', () => {
    assert.equal(
      classifyBackend({ vendor: 'google', architecture: 'swiftshader', device: '', description: '' }),
      'SwiftShader',
    );
    assert.equal(
      classifyBackend({ vendor: 'nvidia', architecture: 'hopper', device: '', description: 'NVIDIA H100' }),
      'real',
    );
  });

  it('upserts a docs section between markers, keeping the rest', () => {
    const first = upsertSection('', 'matmul', 'v1');
    assert.match(first, /^# Benchmarks/);
    assert.ok(first.includes(`${sectionStart('matmul')}\nv1\n${sectionEnd('matmul')}`));
    const edited = first + '\n## Notes by hand\n';
    const second = upsertSection(edited, 'matmul', 'v2\n');
    assert.ok(second.includes('v2') && !second.includes('v1'));
    assert.ok(second.endsWith('## Notes by hand\n'));
    const third = upsertSection(second, 'train-step', 'ts');
    assert.ok(third.indexOf(sectionStart('train-step')) > third.indexOf(sectionEnd('matmul')));
    assert.equal(upsertSection(third, 'matmul', 'v2'), third, 'idempotent');
    assert.throws(() => upsertSection(`x\n${sectionStart('matmul')}\n`, 'matmul', 'v'), /marker/);
  });

  it('the matmul section names the machine, the method and the command', () => {
    const res: MatmulResults = {
      bench: 'matmul',
      date: '2025-01-02T03:04:05.000Z',
      device: {
        adapter: {
          vendor: 'google',
          architecture: 'swiftshader',
          device: '',
          description: '',
          isFallbackAdapter: true,
          summary: 'google swiftshader',
        },
        userAgent: 'UA',
        backend: 'SwiftShader',
        tfjsVersion: '4.22.0',
        tfjsBackend: 'webgpu',
        oursLauncher: 'matmulLaunch',
        chromium: '156',
        host: { platform: 'Linux', cpu: 'Xeon', cores: 2, memGiB: 24, node: 'v20' },
      },
      method: 'METHOD TEXT',
      command: 'npm run bench -- matmul',
      rows: [matmulRow(sample())],
    };
    const s = matmulSection(res);
    for (const want of [
      '2025-01-02',
      'npm run bench -- matmul',
      'google swiftshader',
      'SwiftShader',
      'Xeon',
      'METHOD TEXT',
      '| 512³ |',
    ]) {
      assert.ok(s.includes(want), want);
    }
  });
});
