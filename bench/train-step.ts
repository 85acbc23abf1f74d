// `npm run bench -- train-step`: one full training step (forward, backward, AdamW, loss readback) of
// our GPU trainer vs the same model in TF.js on its WebGPU backend, in one headless Chromium page.
// Builds bench/train-step.html, serves it on 127.0.0.1, runs each model entry (bench/train-step-models.ts)
// in the page, writes bench/results/train-step.json, prints a table and refreshes the "Training step"
// section of docs/BENCHMARKS.md.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { arch, cpus, release, totalmem, type } from 'node:os';
import { dirname, relative, resolve } from 'node:path';
import type { OptionSpec, OptionValue } from './args';
import { buildPage, launchBrowser, openBenchPage, repoRoot, serveStatic } from './browser-harness';
import { upsertSection } from './report';
import { BENCH_HYPER, selectModels, TRAIN_STEP_MODELS } from './train-step-models';
import { formatTrainStepTable, trainStepRow, trainStepSection } from './train-step-report';
import type { TrainStepModelResult, TrainStepResults, TrainStepRow, TrainStepRunOptions } from './train-step-types';

export const trainStepOptions: OptionSpec[] = [
  {
    name: 'models',
    kind: 'string',
    help: `comma list of model entries (${TRAIN_STEP_MODELS.map((m) => m.id).join(', ')})`,
    default: 'all',
  },
  { name: 'repeats', kind: 'int', help: 'timed samples per model and side', default: '7' },
  { name: 'warmup', kind: 'int', min: 0, help: 'untimed steps per side after the check steps', default: '2' },
  {
    name: 'check-steps',
    kind: 'int',
    help: 'steps from identical weights whose losses must agree (step 0 is before any update)',
    default: '3',
  },
  {
    name: 'target-ms',
    kind: 'number',
    help: 'aim for one timed sample (a run of steps) to last this long for the faster side',
    default: '500',
  },
  { name: 'max-steps', kind: 'int', help: 'most steps in one timed sample', default: '20' },
  { name: 'max-sample-ms', kind: 'number', help: 'cap on one sample of the slower side', default: '4000' },
  { name: 'batch-pool', kind: 'int', help: 'distinct batches both sides cycle through', default: '8' },
  { name: 'seed', kind: 'int', help: 'seed for the initial weights and the batches', default: '1' },
  { name: 'out', kind: 'string', help: 'results file', default: 'bench/results/train-step.json' },
  { name: 'no-doc', kind: 'flag', help: 'do not touch docs/BENCHMARKS.md' },
  { name: 'verbose', kind: 'flag', help: "forward the page's console" },
];

export const TRAIN_STEP_METHOD =
  'Both sides run in one headless Chromium page (main thread) on the same WebGPU adapter, each on its own GPUDevice ' +
  '(ours from src/gpu/device.ts, TF.js from its webgpu backend), from the same initial weights ' +
  '(src/model/mlp-spec.ts `mlpInit`, PyTorch layouts, loaded into tf.variables as they are) and on the same batches ' +
  '(a seeded synthetic token stream over the vocabulary in which each token is one of 4 successors of the previous ' +
  'one, so there is something to learn; windows drawn with src/data/split.ts `sampleBatch` and src/util/rng.ts ' +
  '`Rng`; both sides cycle through the same pool of batches in the same order). One step is exactly what a donor ' +
  'pays per local step: ours is `await trainer.step(tokens, targets, hp)`, which uploads the batch, submits one ' +
  'command buffer (forward, backward, AdamW over all parameters in one dispatch) and maps back the 4-byte loss; ' +
  'TF.js is `tf.tensor1d` of the batch, `optimizer.minimize(lossFn, true, vars)` (autodiff; our AdamW written as a ' +
  'tf.Optimizer, the same update as torch.optim.AdamW, ~14 ops per weight tensor as tf.train.adam has) and `await ' +
  "loss.data()`, then disposing the step's tensors. So both sides sync with the CPU once per step, and the readback " +
  'is in the time. Per model: check steps (TF.js compiles its shaders during its first; ours built its pipelines ' +
  'when the trainer was created; their losses must agree: the step-0 loss, from identical weights before any update, ' +
  'within a float32 tolerance of each other and of a float64 CPU loss, the later ones after AdamW updates within a ' +
  'looser one; a side that fails posts no time), warm-up steps, one step each to size the samples (steps per sample ' +
  '≈ target-ms for the faster side, capped by max-steps and max-sample-ms for the slower), then timed samples ' +
  'interleaved (ours/TF.js, alternating who goes first), each a run of back-to-back steps timed with ' +
  '`performance.now()` in the page; ms/step = sample / steps, and the table shows the median. TF.js tensor counts ' +
  'before and after timing are recorded to catch a leaking step, and one more TF.js step is run under `tf.profile` ' +
  'to count its kernel calls ("TF.js kernels/step"; a few, such as reshape, dispatch nothing).';

interface TrainStepCliOptions {
  models: string[] | undefined;
  repeats: number;
  warmup: number;
  checkSteps: number;
  targetMs: number;
  maxSteps: number;
  maxSampleMs: number;
  batchPool: number;
  seed: number;
  out: string;
  doc: boolean;
  verbose: boolean;
}

function toOptions(o: Record<string, OptionValue>): TrainStepCliOptions {
  const models = o.models as string | undefined;
  return {
    models:
      models === undefined || models === 'all'
        ? undefined
        : models
            .split(',')
            .map((s) => s.trim())
            .filter((s) => s !== ''),
    repeats: (o.repeats as number | undefined) ?? 7,
    warmup: (o.warmup as number | undefined) ?? 2,
    checkSteps: (o['check-steps'] as number | undefined) ?? 3,
    targetMs: (o['target-ms'] as number | undefined) ?? 500,
    maxSteps: (o['max-steps'] as number | undefined) ?? 20,
    maxSampleMs: (o['max-sample-ms'] as number | undefined) ?? 4000,
    batchPool: (o['batch-pool'] as number | undefined) ?? 8,
    seed: (o.seed as number | undefined) ?? 1,
    out: resolve(repoRoot, (o.out as string | undefined) ?? 'bench/results/train-step.json'),
    doc: !o['no-doc'],
    verbose: Boolean(o.verbose),
  };
}

/** The commit the tree is at and the files under src/ and shaders/ that differ from it (the code being timed). */
export function treeState(): TrainStepResults['tree'] {
  const git = (...args: string[]) =>
    execFileSync('git', args, { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const commit = git('rev-parse', '--short=12', 'HEAD').trim();
    // Porcelain lines are "XY path"; X may be a space, so the output is not trimmed before slicing.
    const changed = git('status', '--porcelain', '--untracked-files=all', '--', 'src', 'shaders')
      .split('\n')
      .filter((l) => l.length > 3)
      .map((l) => l.slice(3));
    return { commit, changed };
  } catch {
    return null;
  }
}

/** `p` relative to the working directory when it lies inside it, else absolute. */
function shortPath(p: string): string {
  const r = relative(process.cwd(), p);
  return r && !r.startsWith('..') ? r : p;
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Runs the train-step benchmark; resolves to the process exit code (1 if any model failed its check). */
export async function runTrainStepBench(raw: Record<string, OptionValue>, command: string): Promise<number> {
  const o = toOptions(raw);
  let models;
  try {
    models = selectModels(o.models);
  } catch (e) {
    console.error(`train-step: ${(e as Error).message}`);
    return 2;
  }
  const log = (line: string) => console.log(line);
  const t0 = Date.now();

  log('train-step: building the bench page (vite)…');
  const dir = await buildPage('train-step');
  const server = await serveStatic(dir);
  const { browser } = await launchBrowser();
  try {
    const chromiumVersion = browser.version();
    const page = await openBenchPage(
      browser,
      `${server.origin}/train-step.html`,
      'starlingTrainStepBench',
      log,
      o.verbose,
    );
    // openBenchPage has waited for the page to set the global, hence the non-null assertions below.
    const info = await page.evaluate(() => globalThis.starlingTrainStepBench!.init());
    log(
      `train-step: Chromium ${chromiumVersion}, adapter ${info.adapter.summary} ` +
        `(${info.backend}), TF.js ${info.tfjsVersion} on ${info.tfjsBackend}`,
    );

    const rawResults: TrainStepModelResult[] = [];
    const rows: TrainStepRow[] = [];
    for (const model of models) {
      const t = Date.now();
      const runOpts: TrainStepRunOptions = {
        model,
        hp: BENCH_HYPER,
        seed: o.seed,
        checkSteps: o.checkSteps,
        warmupSteps: o.warmup,
        repeats: o.repeats,
        targetMs: o.targetMs,
        maxSteps: o.maxSteps,
        maxSampleMs: o.maxSampleMs,
        batchPool: o.batchPool,
      };
      log(`train-step: ${model.what} (${o.repeats} timed samples per side)…`);
      const r = await page.evaluate((ro) => globalThis.starlingTrainStepBench!.run(ro), runOpts);
      rawResults.push(r);
      const row = trainStepRow(r);
      rows.push(row);
      const ms = (x: number | null) => (x === null ? 'FAIL' : `${x.toFixed(1)} ms`);
      const c = row.check;
      log(
        `train-step: ${model.id} done in ${secs(Date.now() - t)}: ` +
          `ours ${ms(row.ours)}/step, TF.js ${ms(row.theirs)}/step, ` +
          `ratio ${row.ratio === null ? '—' : row.ratio.toFixed(2)}, ${row.stepsPerSample} steps/sample; ` +
          `step-0 loss ours ${r.oursCheckLosses[0]} TF.js ${r.theirsCheckLosses[0]} CPU ${r.cpuLoss0}; ` +
          `|Δloss| ${c.step0Diff.toExponential(1)} / later ${c.laterDiff.toExponential(1)}; ` +
          `max |Δθ| after ${o.checkSteps} steps ${r.paramMaxAbsDiff.toExponential(1)}; ` +
          `first steps ${r.oursFirstStepMs.toFixed(0)} / ${r.theirsFirstStepMs.toFixed(0)} ms; ` +
          `TF.js kernels/step ${r.theirsKernelsPerStep ?? '?'}` +
          (c.valid
            ? ''
            : `  ✗ disagreement beyond tolerance (step 0 ` +
              `${c.step0Tol.toExponential(1)}, later ${c.laterTol.toExponential(1)})`) +
          (row.tfTensorLeak !== 0 ? `  (TF.js tensors grew by ${row.tfTensorLeak} while timing)` : ''),
      );
    }

    const first = rawResults[0];
    const results: TrainStepResults = {
      bench: 'train-step',
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
      tree: treeState(),
      hp: BENCH_HYPER,
      oursImpl: [...new Set(rawResults.map((r) => r.oursImpl))].join('; ') || (first?.oursImpl ?? ''),
      theirsImpl: [...new Set(rawResults.map((r) => r.theirsImpl))].join('; ') || (first?.theirsImpl ?? ''),
      method: TRAIN_STEP_METHOD,
      command,
      rows,
      raw: rawResults,
    };
    mkdirSync(dirname(o.out), { recursive: true });
    writeFileSync(o.out, JSON.stringify(results, null, 2) + '\n');
    log('');
    log(formatTrainStepTable(rows));
    log('');
    log(`train-step: wrote ${shortPath(o.out)}`);
    if (o.doc) {
      const docPath = resolve(repoRoot, 'docs/BENCHMARKS.md');
      const before = existsSync(docPath) ? readFileSync(docPath, 'utf8') : '';
      writeFileSync(docPath, upsertSection(before, 'train-step', trainStepSection(results)));
      log(`train-step: refreshed the train-step section of ${shortPath(docPath)}`);
    }
    log(`train-step: total ${secs(Date.now() - t0)}`);
    const failed = rows.filter((r) => !r.check.valid);
    if (failed.length) {
      console.error(
        `train-step: ${failed.length} model(s) failed the agreement check: ${failed.map((r) => r.id).join(', ')}`,
      );
      return 1;
    }
    return 0;
  } finally {
    await browser.close().catch(() => {});
    await server.close();
  }
}
