// `npm run bench -- matmul`: our WGSL matmul (the variant our selector picks, and the simple variant as a
// column) vs TF.js tf.matMul (webgpu backend) in one headless Chromium page. Builds bench/matmul.html, serves it on
// 127.0.0.1, runs each size in the page, writes bench/results/matmul.json, prints a table and refreshes the matmul
// section of docs/BENCHMARKS.md. `npm run bench -- matmul --gpt-shapes` instead times the products of a GPT training
// step in Node (bench/matmul-shapes.ts): the chosen plan vs the simple variant, per shape and per step.
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { cpus, totalmem, type, release, arch } from 'node:os';
import { dirname, relative, resolve } from 'node:path';
import type { OptionSpec, OptionValue } from './args';
import { buildPages, launchBrowser, openBenchPage, repoRoot, serveStatic } from './browser-harness';
import type { MatmulResults, MatmulRow, MatmulSizeOptions } from './matmul-types';
import { formatTable, matmulRow, matmulSection, upsertSection } from './report';
import { runGptShapesBench } from './matmul-shapes';
import { defaultRepeats, defaultWarmup } from './stats';

export const matmulOptions: OptionSpec[] = [
  { name: 'sizes', kind: 'ints', help: 'square sizes n (n×n times n×n)', default: '64,128,256,512,1024' },
  { name: 'repeats', kind: 'int', help: 'timed samples per size and side', default: '7; 5 at 512+; 3 at 1024+' },
  {
    name: 'warmup',
    kind: 'int',
    min: 0,
    help: 'untimed batches per side after the compiling and batch-sizing runs',
    default: '1; 0 at 512+',
  },
  { name: 'target-ms', kind: 'number', help: 'aim for one timed sample (a batch) to last this long', default: '200' },
  { name: 'max-batch', kind: 'int', help: 'most products submitted back to back per sample', default: '64' },
  { name: 'max-sample-ms', kind: 'number', help: 'cap on one sample of the slower side', default: '4000' },
  { name: 'seed', kind: 'int', help: 'seed for the random inputs', default: '1' },
  {
    name: 'check-samples',
    kind: 'int',
    help: 'output entries checked against a float64 CPU dot product',
    default: '256',
  },
  { name: 'out', kind: 'string', help: 'results file', default: 'bench/results/matmul.json' },
  { name: 'no-doc', kind: 'flag', help: 'do not touch docs/BENCHMARKS.md' },
  { name: 'verbose', kind: 'flag', help: "forward the page's console" },
  {
    name: 'gpt-shapes',
    kind: 'flag',
    help: 'time the products of a GPT training step in Node instead (bench/matmul-shapes.ts)',
  },
  {
    name: 'variants',
    kind: 'string',
    help: 'with --gpt-shapes: extra variants to time, comma-separated, each optionally :splits (direct-64:4)',
  },
  {
    name: 'only',
    kind: 'string',
    help: 'with --gpt-shapes: only shapes whose label or shape contains one of these, comma-separated (dW, Aᵀ)',
  },
  {
    name: 'ranks',
    kind: 'string',
    help: 'with --gpt-shapes: low-rank ranks to list, comma-separated (0 = full rank)',
    default: '0,16',
  },
];

export const MATMUL_METHOD =
  'All sides run in one headless Chromium page on the same WebGPU adapter (ours on its own GPUDevice from ' +
  'src/gpu/device.ts, TF.js on the one its webgpu backend creates), on the same seeded random inputs, which live on ' +
  'the GPU before timing starts. "Ours" is the variant `chooseMatmulVariant` picks from the device limits and the ' +
  'shape (as every caller of `matmulLaunch` gets it); "simple" is our simple variant, timed alongside as a ' +
  'reference. A timed sample submits a batch of k products back to back and waits for the GPU to finish: ours ' +
  'encodes k dispatches of one prebuilt launch (pipeline, bind group, uniform built once per size) into one compute ' +
  'pass, submits, and awaits `device.queue.onSubmittedWorkDone()`; TF.js calls `tf.matMul(a, b)` k times (each ' +
  'allocating its output and recording a dispatch, submitted in groups of 15 by TF.js itself), then flushes its ' +
  "command encoder the way its own `data()` does and awaits its device's `queue.onSubmittedWorkDone()`; no readback " +
  'is timed. TF.js thus also pays its per-op bookkeeping, as it does in real use. Time is `performance.now()` in the ' +
  'page; ms per product = sample / k. Per size: one untimed compiling run each, one single product each to choose k ' +
  '(≈ target-ms for the fastest side, capped by max-batch and max-sample-ms for the slowest), warm-up batches (one ' +
  'below 512, none from 512 on, where that single product already ran warm), then timed samples interleaved (ours, ' +
  'TF.js, simple, rotating who goes first); the table shows the median. After timing, the last product of each side ' +
  'is read back: ours is compared with TF.js (max |diff| over all n² entries), each side with a float64 CPU dot ' +
  'product on sampled entries, and simple with ours over all entries; past a tolerance of 1e-3 + 1e-5·n a side ' +
  'posts no speed (FAIL).';

interface MatmulCliOptions {
  sizes: number[];
  repeats?: number;
  warmup?: number;
  targetMs: number;
  maxBatch: number;
  maxSampleMs: number;
  seed: number;
  checkSamples: number;
  out: string;
  doc: boolean;
  verbose: boolean;
}

function toOptions(o: Record<string, OptionValue>): MatmulCliOptions {
  return {
    sizes: (o.sizes as number[] | undefined) ?? [64, 128, 256, 512, 1024],
    repeats: o.repeats as number | undefined,
    warmup: o.warmup as number | undefined,
    targetMs: (o['target-ms'] as number | undefined) ?? 200,
    maxBatch: (o['max-batch'] as number | undefined) ?? 64,
    maxSampleMs: (o['max-sample-ms'] as number | undefined) ?? 4000,
    seed: (o.seed as number | undefined) ?? 1,
    checkSamples: (o['check-samples'] as number | undefined) ?? 256,
    out: resolve(repoRoot, (o.out as string | undefined) ?? 'bench/results/matmul.json'),
    doc: !o['no-doc'],
    verbose: Boolean(o.verbose),
  };
}

/** `p` relative to the working directory when it lies inside it, else absolute. */
function shortPath(p: string): string {
  const r = relative(process.cwd(), p);
  return r && !r.startsWith('..') ? r : p;
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Runs the matmul benchmark; resolves to the process exit code (1 if any size failed its check). */
export async function runMatmulBench(raw: Record<string, OptionValue>, command: string): Promise<number> {
  if (raw['gpt-shapes']) {
    const list = (x: OptionValue | undefined) =>
      typeof x === 'string'
        ? x
            .split(',')
            .map((v) => v.trim())
            .filter(Boolean)
        : [];
    return runGptShapesBench({
      variants: list(raw.variants),
      rank: list(raw.ranks ?? '0,16').map(Number),
      only: list(raw.only),
      repeats: (raw.repeats as number | undefined) ?? 5,
      targetMs: (raw['target-ms'] as number | undefined) ?? 100,
      maxBatch: (raw['max-batch'] as number | undefined) ?? 64,
      seed: (raw.seed as number | undefined) ?? 1,
      out: raw.out === undefined ? 'bench/results/matmul-gpt-shapes.json' : (raw.out as string),
    });
  }
  const o = toOptions(raw);
  const log = (line: string) => console.log(line);
  const t0 = Date.now();

  log('matmul: building the bench page (vite)…');
  const dir = await buildPages(['matmul']);
  const server = await serveStatic(dir);
  const { browser } = await launchBrowser();
  try {
    const chromiumVersion = browser.version();
    const page = await openBenchPage(browser, `${server.origin}/matmul.html`, 'starlingMatmulBench', log, o.verbose);
    // openBenchPage has waited for the page to set the global, hence the non-null assertions below.
    const info = await page.evaluate(() => globalThis.starlingMatmulBench!.init());
    log(
      `matmul: Chromium ${chromiumVersion}, adapter ${info.adapter.summary} ` +
        `(${info.backend}), TF.js ${info.tfjsVersion} on ${info.tfjsBackend}`,
    );
    if (info.limits) log(`matmul: device limits seen by the variant selector: ${JSON.stringify(info.limits)}`);
    if (info.backend === 'SwiftShader')
      log('matmul: SwiftShader runs WebGPU on the CPU; expect a few minutes, 1024³ is the slow one.');

    const rows: MatmulRow[] = [];
    for (const size of o.sizes) {
      const t = Date.now();
      const sizeOpts: MatmulSizeOptions = {
        size,
        repeats: o.repeats ?? defaultRepeats(size),
        warmup: o.warmup ?? defaultWarmup(size),
        targetMs: o.targetMs,
        maxBatch: o.maxBatch,
        maxSampleMs: o.maxSampleMs,
        seed: o.seed + size,
        checkSamples: o.checkSamples,
      };
      log(`matmul: ${size}³ (${sizeOpts.repeats} timed samples per side)…`);
      const r = await page.evaluate((so) => globalThis.starlingMatmulBench!.run(so), sizeOpts);
      const row = matmulRow(r);
      rows.push(row);
      const g = (x: number | null) => (x === null ? 'FAIL' : x.toFixed(3));
      log(
        `matmul: ${size}³ done in ${secs(Date.now() - t)}: ours (${row.variant}) ` +
          `${g(row.oursGflops)} GFLOP/s, TF.js ${g(row.tfjsGflops)} GFLOP/s, ` +
          `ratio ${row.ratio === null ? '—' : row.ratio.toFixed(2)}, ` +
          `simple ${g(row.simpleGflops ?? null)} GFLOP/s, ` +
          `batch ${row.batch}, max |diff| ${row.maxAbsDiff.toExponential(1)}` +
          (row.valid
            ? ''
            : `  ✗ beyond tolerance ${row.tolerance.toExponential(1)} (ours vs CPU ` +
              `${row.oursRefErr.toExponential(1)}, TF.js vs CPU ${row.tfjsRefErr.toExponential(1)})`),
      );
    }

    const results: MatmulResults = {
      bench: 'matmul',
      date: new Date().toISOString(),
      device: {
        ...info,
        chromium: chromiumVersion,
        host: {
          platform: `${type()} ${release()} ${arch()}`,
          cpu: cpus()[0]?.model.trim() ?? 'unknown CPU',
          cores: cpus().length,
          memGiB: Math.round(totalmem() / 2 ** 30),
          node: process.version,
        },
      },
      method: MATMUL_METHOD,
      command,
      rows,
    };
    mkdirSync(dirname(o.out), { recursive: true });
    writeFileSync(o.out, JSON.stringify(results, null, 2) + '\n');
    log('');
    log(formatTable(rows));
    log('');
    log(`matmul: wrote ${shortPath(o.out)}`);
    if (o.doc) {
      const docPath = resolve(repoRoot, 'docs/BENCHMARKS.md');
      const before = existsSync(docPath) ? readFileSync(docPath, 'utf8') : '';
      mkdirSync(dirname(docPath), { recursive: true });
      writeFileSync(docPath, upsertSection(before, 'matmul', matmulSection(results)));
      log(`matmul: refreshed the matmul section of ${shortPath(docPath)}`);
    }
    log(`matmul: total ${secs(Date.now() - t0)}`);
    const failed = rows.filter((r) => !r.valid);
    if (failed.length) {
      console.error(
        `matmul: ${failed.length} size(s) failed the correctness check: ${failed.map((r) => r.size).join(', ')}`,
      );
      return 1;
    }
    return 0;
  } finally {
    await browser.close().catch(() => {});
    await server.close();
  }
}
