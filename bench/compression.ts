// `npm run bench -- compression [--quick]`: the same job trained by N = 4 simulated donors under every
// arm (codec × local steps), equal tokens per arm, several seeds, through the real encoders, decoders,
// outer optimizer and message sizes (bench/compression-sim.ts) in one headless Chromium page. Writes
// bench/results/compression.json, prints the table, renders the loss-vs-bytes plot to
// docs/compression-<mode>.png and refreshes the compression section of docs/BENCHMARKS.md.
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { arch, cpus, release, totalmem, type } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { OptionSpec, OptionValue } from './args';
import { buildPage, launchBrowser, openBenchPage, repoRoot, serveStatic } from './browser-harness';
import type { Page } from 'playwright-core';
import { upsertSection } from './report';
import { defaultOuter } from '../src/sync/outer';
import { treeState } from './train-step';
import { aggregate, bestArm, formatTable, LINKS, plotSvg, TARGET_FACTOR, type ArmRow } from './compression-report';
import type { SimArm, SimJob, SimResult } from './compression-sim';
import { runRealArm, type RealComparison } from './compression-real';
import type { CompressionPageData } from './page/compression-page';
import { parseJobSpec, jobModelConfig, type JobSpec } from '../coordinator/job-spec';
import { buildJobData, loadCorpus } from '../coordinator/corpus';
import { validationTargets } from '../coordinator/job-runner';
import { modelEvalBatch, modelInit, modelParamCount, type ModelConfig } from '../src/model/model';
import { shardRange } from '../src/data/split';

export const compressionOptions: OptionSpec[] = [
  {
    name: 'quick',
    kind: 'flag',
    help: 'the MLP on the default corpus (minutes) instead of the GPT on tiny shakespeare',
  },
  { name: 'seeds', kind: 'int', help: 'seeds per arm', default: '2' },
  {
    name: 'steps',
    kind: 'int',
    help: 'local steps per donor per arm (a multiple of 50)',
    default: 'quick 500, full 600',
  },
  { name: 'donors', kind: 'int', help: 'simulated donors', default: '4' },
  {
    name: 'arms',
    kind: 'string',
    help: 'comma list of arm names (see the table) or "all" (the full run has fewer top-k + 2-bit arms)',
    default: 'all',
  },
  {
    name: 'custom',
    kind: 'string',
    help:
      'extra arms, ";"-separated, each UP[>DOWN]@H[,OUTER_LR,MOMENTUM[,EF_DECAY]] ' +
      '(e.g. "topk:0.02/q2>topk:0.04/q2@10,1,0")',
  },
  {
    name: 'real',
    kind: 'string',
    help:
      'also train this arm ("best": the best arm) with a real coordinator and headless ' +
      'donors over WebRTC, seed 1, and compare bytes and loss with its simulation',
  },
  {
    name: 'eval-every',
    kind: 'int',
    help: 'validate every this many local steps (a multiple of every H)',
    default: '50',
  },
  { name: 'out', kind: 'string', help: 'results file', default: 'bench/results/compression[-quick].json' },
  { name: 'no-doc', kind: 'flag', help: 'do not touch docs/BENCHMARKS.md or the plot' },
  { name: 'from', kind: 'string', help: 'run nothing: redraw the plot and docs section from this results file' },
  { name: 'doc-subset', kind: 'flag', help: 'write the table and plot even when --arms ran only some of the arms' },
  {
    name: 'resume',
    kind: 'flag',
    help:
      'keep the runs an interrupted run of the same job saved in OUT.partial.json (or, ' +
      'without one, those of the finished OUT, to add arms or seeds) and run only the rest',
  },
  { name: 'verbose', kind: 'flag', help: "print every validation of every arm (the page's console)" },
];

const dp = (name: string, codec: string): SimArm => ({
  name,
  codec,
  downCodec: codec,
  localSteps: 1,
  outerLr: 1,
  outerMomentum: 0,
});
const diloco = (name: string, H: number, codec: string): SimArm => ({
  name,
  codec,
  downCodec: codec,
  localSteps: H,
  outerLr: 0.7,
  outerMomentum: 0.9,
});

const sparseLoco = (name: string, H: number, codec: string): SimArm => ({
  ...diloco(name, H, codec),
  outerLr: 1,
  outerMomentum: 0,
});

/** The arms, baseline first. H = 1 arms are synchronous data parallel (plain averaging of one AdamW step). */
export const ARMS: SimArm[] = [
  dp('dense f32', 'f32'),
  dp('f16', 'f16'),
  dp('8-bit', 'q8'),
  dp('4-bit', 'q4'),
  dp('top-k 1%', 'topk:0.01'),
  dp('PowerSGD r1', 'powersgd:1'),
  dp('PowerSGD r2', 'powersgd:2'),
  dp('PowerSGD r4', 'powersgd:4'),
  dp('CocktailSGD', 'cocktail'),
  diloco('DiLoCo H10', 10, 'f32'),
  diloco('DiLoCo H50', 50, 'f32'),
  diloco('DiLoCo H10 4-bit', 10, 'q4'),
  diloco('DiLoCo H50 4-bit', 50, 'q4'),
  // Sparse pseudo-gradients: outer lr 1 without momentum, the donors' error feedback carrying what
  // was not sent (SparseLoCo's recipe); Nesterov 0.7/0.9 on top of it diverged or lagged (docs/COMPRESSION.md).
  sparseLoco('DiLoCo H10 top-k 10% 2-bit', 10, 'topk:0.1/q2'),
  sparseLoco('DiLoCo H50 top-k 10% 2-bit', 50, 'topk:0.1/q2'),
  sparseLoco('DiLoCo H10 top-k 5% 2-bit', 10, 'topk:0.05/q2'),
  sparseLoco('DiLoCo H10 top-k 4% 2-bit', 10, 'topk:0.04/q2'),
  sparseLoco('DiLoCo H10 top-k 3% 2-bit', 10, 'topk:0.03/q2'),
  sparseLoco('DiLoCo H10 top-k 2% 2-bit', 10, 'topk:0.02/q2'),
  sparseLoco('DiLoCo H25 top-k 5% 2-bit', 25, 'topk:0.05/q2'),
];

/**
 * The full (GPT) run's arms: the issue's list, with one top-k + 2-bit DiLoCo arm per H (the H10 one at
 * the density the quick run found best).
 */
export const FULL_ARMS: SimArm[] = ARMS.filter(
  (a) => !/top-k (10|5|3|2)% 2-bit/.test(a.name) || a.name === 'DiLoCo H50 top-k 10% 2-bit',
);

/** The jobs of the two modes, as a researcher would post them (the job spec's defaults fill the rest). */
export const COMPRESSION_JOBS = {
  quick: { name: 'compression-quick', data: { source: 'builtin:cmudict' } },
  full: {
    name: 'compression-full',
    model: { type: 'gpt', context: 32, layers: 1, heads: 2, width: 32 },
    data: { source: 'shared:tinyshakespeare', maxBytes: 1_200_000 },
    train: { batch: 16, lr: 3e-3 },
  },
} as const;

export interface CompressionResults {
  bench: 'compression';
  mode: 'quick' | 'full';
  date: string;
  device: Record<string, unknown>;
  tree: unknown;
  command: string;
  method: string;
  job: {
    spec: JobSpec;
    model: ModelConfig;
    params: number;
    donors: number;
    stepsPerDonor: number;
    tokensPerDonor: number;
    seeds: number[];
  };
  links: typeof LINKS;
  targetFactor: number;
  arms: ArmRow[];
  best: string | null;
  runs: SimResult[];
  real?: RealComparison;
}

export const COMPRESSION_METHOD =
  'N simulated donors and the coordinator run in one headless Chromium page (bench/compression-sim.ts): each donor ' +
  "is a GPU trainer on the page's WebGPU device and a DonorSync (the code the donor worker runs), the coordinator a " +
  'CoordinatorSync (the code coordinator/job-engine.ts runs): the same encoders, decoders, error feedback, outer ' +
  'optimizer and broadcast. Bytes are the wire sizes of the real messages (src/protocol/wire.ts wireSize: encoded ' +
  'update, broadcast step and assignment plus frame headers), per donor; the first job message and f32 snapshot are ' +
  'left out of the per-step figures. Every arm trains the same job for the same local steps per donor (equal tokens) ' +
  'from the same initial weights and shards; seeds change the initial weights and the batches. H = 1 arms average ' +
  'one AdamW step per donor (outer lr 1, no momentum); DiLoCo arms use Nesterov outer lr 0.7, momentum 0.9, except ' +
  "the sparse ones (top-k), which use lr 1 without momentum (a job's defaults, src/sync/outer.ts). Donors run a " +
  "round's H local steps with one GPU round trip (Trainer.steps), as the donor worker does. Time to target is " +
  "simulated per round as H · (the arm's measured compute per local step, ms/step: the median over its rounds and " +
  "seeds of the round's set-weights, H steps and read-back divided by H) + measured encode and coordinator time + " +
  'one RTT + up bytes / up rate + down bytes / down rate, counted until the first validation at or below the dense ' +
  `arm's final validation loss (same seed) × ${TARGET_FACTOR}.`;

/**
 * Parses --custom: UP[>DOWN]@H[,OUTER_LR,MOMENTUM[,EF_DECAY]] arms (downlink codec: the uplink's unless
 * given; outer optimizer: a job's default, defaultOuter(H, UP)).
 */
export function parseCustomArms(spec: string): SimArm[] {
  return spec
    .split(';')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const m = /^([^@>]+)(?:>([^@]+))?@(\d+)(?:,([0-9.]+),([0-9.]+)(?:,([0-9.]+))?)?$/.exec(s);
      if (!m) throw new Error(`custom arm ${JSON.stringify(s)} is not UP[>DOWN]@H[,OUTER_LR,MOMENTUM[,EF_DECAY]]`);
      const [, up, down, h, lr, mom, decay] = m;
      const H = Number(h);
      const d = defaultOuter(H, up);
      const arm: SimArm = {
        ...(H > 1 ? diloco('', H, up) : dp('', up)),
        outerLr: lr ? Number(lr) : d.lr,
        outerMomentum: mom ? Number(mom) : d.momentum,
      };
      if (down) arm.downCodec = down;
      if (decay) arm.errorDecay = Number(decay);
      const ef = decay ? ` ef${decay}` : '';
      arm.name = `${up}${down ? `>${down}` : ''} H${H} lr${arm.outerLr} m${arm.outerMomentum}${ef}`;
      return arm;
    });
}

function pickArms(all: SimArm[], spec: string | undefined, custom?: string): SimArm[] {
  const extra = custom ? parseCustomArms(custom) : [];
  if (extra.length && spec === undefined) return [ARMS[0], ...extra];
  if (spec === undefined || spec === 'all') return [...all, ...extra];
  const names = spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = names.filter((n) => !ARMS.some((a) => a.name === n));
  if (unknown.length)
    throw new Error(`unknown arm(s) ${unknown.join(', ')} (known: ${ARMS.map((a) => a.name).join(', ')})`);
  const arms = ARMS.filter((a) => names.includes(a.name));
  if (arms[0] !== ARMS[0]) arms.unshift(ARMS[0]); // the baseline always runs
  return [...arms, ...extra];
}

/**
 * --resume: the runs an interrupted run saved (OUT.partial.json) or, when there is none, the runs of the
 * finished results file OUT (to add arms or seeds to it), kept only when they trained the same job (spec,
 * model, donors, steps, validation cadence) and only for arms and seeds this run asks for, with the same
 * settings.
 */
export function loadPartial(
  path: string,
  key: unknown,
  arms: SimArm[],
  seeds: number[],
  log: (l: string) => void,
): SimResult[] {
  if (!existsSync(path)) {
    log(`compression: --resume: no ${path}, starting afresh`);
    return [];
  }
  const saved = JSON.parse(readFileSync(path, 'utf8')) as {
    bench?: string;
    key?: unknown;
    runs?: SimResult[];
    job?: CompressionResults['job'];
  };
  if (
    !Array.isArray(saved.runs) ||
    !(saved.bench === 'compression-partial' || (saved.bench === 'compression' && saved.job))
  ) {
    throw new Error(`--resume: ${path} is neither a saved partial compression run nor a compression results file`);
  }
  const savedKey = saved.bench === 'compression-partial' ? saved.key : resultsKey(saved as CompressionResults);
  if (JSON.stringify(savedKey) !== JSON.stringify(key))
    throw new Error(
      `--resume: ${path} trained a different job (job spec, donors, ` +
        `steps or --eval-every differ); delete it or drop --resume`,
    );
  const kept = saved.runs.filter(
    (r) => seeds.includes(r.seed) && arms.some((a) => JSON.stringify(a) === JSON.stringify(r.arm)),
  );
  log(`compression: --resume: kept ${kept.length} of ${saved.runs.length} saved runs from ${path}`);
  return kept;
}

/** The --resume key of a finished results file; its validation cadence is the step of its first validation. */
function resultsKey(r: CompressionResults) {
  return {
    spec: r.job.spec,
    model: r.job.model,
    donors: r.job.donors,
    steps: r.job.stepsPerDonor,
    evalEvery: r.runs[0]?.curve[0]?.step,
  };
}

/** Loads and splits the job's corpus the way the coordinator does; one shard per donor. */
export async function prepareJob(spec: JobSpec, donors: number) {
  const corpus = await loadCorpus(spec.data.source, { maxBytes: spec.data.maxBytes });
  const data = buildJobData({ ...spec, train: { ...spec.train, shards: donors } }, corpus);
  const model = jobModelConfig(spec.model, data.tokenizer.size);
  const shards = Array.from({ length: donors }, (_, i) => {
    const [a, b] = shardRange(data.train.length, i, donors);
    return data.train.subarray(a, b);
  });
  const val = modelEvalBatch(model, data.val, validationTargets(model));
  return { model, shards, val, description: data.description };
}

export async function runCompressionBench(raw: Record<string, OptionValue>, command: string): Promise<number> {
  if (raw.from) return replot(raw.from as string, (l) => console.log(l));
  const quick = Boolean(raw.quick);
  const mode = quick ? 'quick' : 'full';
  const log = (line: string) => console.log(line);
  let arms: SimArm[];
  try {
    arms = pickArms(quick ? ARMS : FULL_ARMS, raw.arms as string | undefined, raw.custom as string | undefined);
  } catch (e) {
    console.error(`compression: ${(e as Error).message}`);
    return 2;
  }
  const seeds = Array.from({ length: (raw.seeds as number | undefined) ?? 2 }, (_, i) => i + 1);
  const donors = (raw.donors as number | undefined) ?? 4;
  const steps = (raw.steps as number | undefined) ?? (quick ? 500 : 600);
  const evalEvery = (raw['eval-every'] as number | undefined) ?? 50;
  const bad = arms.find((a) => steps % a.localSteps !== 0 || evalEvery % a.localSteps !== 0);
  if (bad || steps % evalEvery !== 0) {
    console.error(
      `compression: --steps ${steps} must be a multiple of --eval-every ${evalEvery}, ` +
        `and both of every arm's H${bad ? ` (${bad.name} has H = ${bad.localSteps})` : ''}`,
    );
    return 2;
  }
  const out = resolve(
    repoRoot,
    (raw.out as string | undefined) ?? `bench/results/compression${quick ? '-quick' : ''}.json`,
  );
  // Each finished (arm, seed) run is saved at once, so an interrupted run (hours for the full one) loses
  // at most one run and --resume picks it up. A run without --resume would overwrite those runs: refuse.
  const partialPath = `${out}.partial.json`;
  if (!raw.resume && existsSync(partialPath)) {
    console.error(
      `compression: ${partialPath} holds the runs of an interrupted ` +
        `run: pass --resume to keep them, or delete it to start over`,
    );
    return 2;
  }
  const spec = parseJobSpec(COMPRESSION_JOBS[mode]);
  const t0 = Date.now();
  log(`compression (${mode}): loading ${spec.data.source}…`);
  let prepared;
  try {
    prepared = await prepareJob(spec, donors);
  } catch (e) {
    console.error(`compression: ${(e as Error).message}`);
    return 1;
  }
  const { model, shards, val } = prepared;
  const params = modelParamCount(model);
  log(
    `compression: ${model.type} with ${params.toLocaleString('en-US')} parameters, ` +
      `${donors} donors × ${steps} steps, ${arms.length} arms × ${seeds.length} seeds`,
  );

  const key = { spec, model, donors, steps, evalEvery };
  let runs: SimResult[];
  try {
    runs = raw.resume
      ? loadPartial(existsSync(partialPath) || !existsSync(out) ? partialPath : out, key, arms, seeds, log)
      : [];
  } catch (e) {
    console.error(`compression: ${(e as Error).message}`);
    return 2;
  }
  const dir = await buildPage('compression');
  const server = await serveStatic(dir);
  const { browser } = await launchBrowser();
  try {
    const page = await openBenchPage(
      browser,
      `${server.origin}/compression.html`,
      'starlingCompressionBench',
      log,
      Boolean(raw.verbose),
    );
    // openBenchPage has waited for the page to set the global, hence the non-null assertions below.
    const info = await page.evaluate(() => globalThis.starlingCompressionBench!.init());
    log(`compression: Chromium ${browser.version()}, adapter ${info.adapter}`);
    const savePartial = () => {
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(partialPath, JSON.stringify({ bench: 'compression-partial', key, runs }) + '\n');
    };
    for (const seed of seeds) {
      const data: CompressionPageData = {
        init: Array.from(modelInit(model, seed)),
        shards: shards.map((s) => Array.from(s)),
        val: { tokens: Array.from(val.tokens), targets: Array.from(val.targets) },
      };
      for (const arm of arms) {
        if (runs.some((r) => r.seed === seed && r.arm.name === arm.name)) continue;
        const t = Date.now();
        const job: SimJob = {
          jobId: `compression-${seed}`,
          model,
          train: spec.train,
          seed,
          stepsPerDonor: steps,
          evalEvery,
        };
        const r = await page.evaluate(([j, a, d]) => globalThis.starlingCompressionBench!.runArm(j, a, d), [
          job,
          arm,
          data,
        ] as const);
        runs.push(r);
        savePartial();
        log(
          `compression: seed ${seed} ${arm.name.padEnd(26)} val ${r.finalValLoss.toFixed(4)} ` +
            ` up ${(r.upBytesPerRound / arm.localSteps).toFixed(0)} B/step  ` +
            `down ${(r.downBytesPerRound / arm.localSteps).toFixed(0)} B/step  ` +
            `step ${r.stepMs.toFixed(1)} ms  encode ${r.encodeMs.toFixed(2)} ms  ` +
            `${r.identical ? 'donors bit-identical' : 'DONORS DIFFER'}  (${((Date.now() - t) / 1000).toFixed(0)} s)`,
        );
      }
    }
    // Resumed runs come first; put them back in seed-then-arm order.
    runs.sort(
      (a, b) =>
        a.seed - b.seed || arms.findIndex((x) => x.name === a.arm.name) - arms.findIndex((x) => x.name === b.arm.name),
    );
    const rows = aggregate(runs, ARMS[0].name);
    const best = bestArm(rows);
    const results: CompressionResults = {
      bench: 'compression',
      mode,
      date: new Date().toISOString(),
      device: {
        adapter: info.adapter,
        userAgent: info.userAgent,
        chromium: browser.version(),
        host: {
          platform: `${type()} ${release()} ${arch()}`,
          cpu: cpus()[0]?.model.trim() ?? 'unknown CPU',
          cores: cpus().length,
          memGiB: Math.round(totalmem() / 2 ** 30),
          node: process.version,
        },
      },
      tree: treeState(),
      command: command.replace(/ --resume(?= |$)/, ''),
      method: COMPRESSION_METHOD,
      job: { spec, model, params, donors, stepsPerDonor: steps, tokensPerDonor: runs[0].tokensPerDonor, seeds },
      links: LINKS,
      targetFactor: TARGET_FACTOR,
      arms: rows,
      best: best?.name ?? null,
      runs,
    };
    const realName = raw.real === 'best' ? best?.name : (raw.real as string | undefined);
    if (realName) {
      const sim = runs.find((r) => r.arm.name === realName && r.seed === seeds[0]);
      if (!sim) throw new Error(`--real ${realName}: no simulated run of that arm with seed ${seeds[0]}`);
      const c = await runRealArm(spec, sim.arm, seeds[0], donors, steps, sim, log);
      results.real = c;
      log(
        `compression: real ${c.arm}: up ${c.realUpBytesPerRound.toFixed(0)} ` +
          `vs simulated ${c.simUpBytesPerRound.toFixed(0)} B/round/donor, ` +
          `down ${c.realDownBytesPerRound.toFixed(0)} vs ${c.simDownBytesPerRound.toFixed(0)}; ` +
          `largest validation-loss difference ${c.maxAbsLossDiff.toExponential(2)}`,
      );
    }
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, JSON.stringify(results, null, 1) + '\n');
    rmSync(partialPath, { force: true });
    const table = formatTable(rows);
    log('');
    log(table);
    log('');
    log(
      best
        ? `compression: best arm within 2%: ${best.name}, ${best.ratio.toFixed(0)}× ` +
            `fewer bytes per step, gap ${best.gapPct.toFixed(2)}%`
        : 'compression: no arm within 2% of dense',
    );
    log(`compression: wrote ${out}`);
    const docPath = resolve(repoRoot, 'docs/BENCHMARKS.md');
    if (!raw['no-doc'] && results.real) {
      const before = existsSync(docPath) ? readFileSync(docPath, 'utf8') : '';
      writeFileSync(
        docPath,
        upsertSection(
          before,
          'compression-real',
          `## compression: one arm through the real path (${mode})\n\n${realParagraph(results.real)}\n\nReproduce ` +
            `with:\n\n\`\`\`\n${results.command}\n\`\`\`\n\nResults: \`${out.slice(repoRoot.length + 1)}\`.`,
        ),
      );
      log('compression: refreshed the compression-real section of docs/BENCHMARKS.md');
    }
    // The table and plot only for a run of every arm (a subset would replace them with less).
    const modeArms = quick ? ARMS : FULL_ARMS;
    const allArms = modeArms.every((a) => arms.includes(a)) || Boolean(raw['doc-subset']);
    if (!raw['no-doc'] && !allArms)
      log('compression: not every arm ran, so docs/BENCHMARKS.md keeps its table and plot');
    if (!raw['no-doc'] && allArms) {
      const subset = modeArms.some((a) => !arms.includes(a))
        ? `${arms.length} of the ${modeArms.length} arms (\`--arms\`)`
        : null;
      await writeDocs(page, results, subset, log);
    }
    log(`compression: total ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    return runs.every((r) => r.identical) ? 0 : 1;
  } finally {
    await browser.close().catch(() => {});
    await server.close();
  }
}

/** Renders the plot (PNG through the page) and refreshes the mode's section of docs/BENCHMARKS.md. */
async function writeDocs(
  page: Page,
  results: CompressionResults,
  subset: string | null,
  log: (l: string) => void,
): Promise<void> {
  const mode = results.mode;
  const png = resolve(repoRoot, `docs/compression-${mode}.png`);
  const j = results.job;
  const title =
    `${mode === 'quick' ? 'MLP, default corpus' : 'GPT, tiny shakespeare'}: ` +
    `${j.donors} donors, ${j.stepsPerDonor} steps each, mean of ${j.seeds.length} seeds`;
  await page.setContent(plotSvg(results.runs, title));
  await page.setViewportSize({ width: 900, height: 560 });
  await page.locator('svg').screenshot({ path: png });
  const docPath = resolve(repoRoot, 'docs/BENCHMARKS.md');
  const before = existsSync(docPath) ? readFileSync(docPath, 'utf8') : '';
  writeFileSync(
    docPath,
    upsertSection(before, `compression-${mode}`, compressionSection(results, formatTable(results.arms), subset)),
  );
  log(`compression: refreshed docs/BENCHMARKS.md (compression-${mode}) and ${png}`);
}

/** --from: redraws the plot and docs section of a saved run. */
async function replot(file: string, log: (l: string) => void): Promise<number> {
  const results = JSON.parse(readFileSync(resolve(repoRoot, file), 'utf8')) as CompressionResults;
  if (results.bench !== 'compression')
    throw new Error(`${file} is not a compression benchmark result (bench = ${String(results.bench)})`);
  // Re-aggregated from the runs, so a file written by an older version gets today's figures.
  results.arms = aggregate(results.runs, ARMS[0].name);
  results.best = bestArm(results.arms)?.name ?? null;
  const { browser } = await launchBrowser();
  try {
    const page = await browser.newPage();
    const modeArms = results.mode === 'quick' ? ARMS : FULL_ARMS;
    const ran = new Set(results.arms.map((a) => a.name));
    const subset = modeArms.some((a) => !ran.has(a.name))
      ? `${ran.size} of the ${modeArms.length} arms (\`--arms\`)`
      : null;
    await writeDocs(page, results, subset, log);
    return 0;
  } finally {
    await browser.close().catch(() => {});
  }
}

function stepRange(rows: ArmRow[]): string {
  if (!rows.length) return '—';
  const lo = Math.min(...rows.map((a) => a.stepMs));
  const hi = Math.max(...rows.map((a) => a.stepMs));
  return lo.toFixed(1) === hi.toFixed(1) ? lo.toFixed(1) : `${lo.toFixed(1)}–${hi.toFixed(1)}`;
}

function compressionSection(r: CompressionResults, table: string, subset: string | null): string {
  const j = r.job;
  const what = r.mode === 'quick' ? 'MLP on the default corpus (`--quick`)' : 'GPT on tiny shakespeare';
  const best = r.arms.find((a) => a.name === r.best);
  return [
    `## compression: ${what}`,
    '',
    `${j.params.toLocaleString('en-US')} parameters (${JSON.stringify(j.model)}), ` +
      `${j.donors} donors × ${j.stepsPerDonor} local steps ` +
      `(${j.tokensPerDonor.toLocaleString('en-US')} tokens per donor, equal for ` +
      `every arm), seeds ${j.seeds.join(', ')}${subset ? `; ${subset}` : ''}. ` +
      `Run ${r.date.slice(0, 10)} on ${String(r.device.adapter)}; compute per ` +
      `local step (ms/step) is each arm's own median, as its donors ran it ` +
      `(an H = 1 round also moves the weights in and out of the GPU: ` +
      `${stepRange(r.arms.filter((a) => a.localSteps === 1))} ms at H = 1, ` +
      `${stepRange(r.arms.filter((a) => a.localSteps > 1))} ms at H > 1). Reproduce with:`,
    '',
    '```',
    r.command,
    '```',
    '',
    table,
    '',
    best
      ? `Best arm within 2% of dense: **${best.name}**: ${best.ratio.toFixed(0)}× fewer ` +
        `bytes per step (up ${best.upRatio.toFixed(0)}×), gap ${best.gapPct.toFixed(2)}%, ` +
        (best.speedup[LINKS[0].name] === null
          ? `target (dense × ${TARGET_FACTOR}) not reached in every seed.`
          : `${best.speedup[LINKS[0].name]!.toFixed(1)}× sooner to target at ${LINKS[0].name}.`)
      : 'No arm came within 2% of dense.',
    '',
    `![validation loss against bytes sent](compression-${r.mode}.png)`,
    '',
    `Method: ${r.method}`,
  ].join('\n');
}

function realParagraph(c: RealComparison): string {
  const pct = (a: number, b: number) => `${((100 * (a - b)) / b).toFixed(2)}%`;
  const last = c.curve.at(-1);
  return (
    `Real path check (\`--real\`): **${c.arm}**, seed ${c.seed}, trained by ` +
    `a real coordinator and ${c.donors} headless Chromium donors over WebRTC ` +
    `(${c.rounds} rounds, ${c.wallSeconds.toFixed(0)} s). Bytes per donor per round ` +
    `as the data channels counted them: up ${c.realUpBytesPerRound.toFixed(0)} ` +
    `(simulated ${c.simUpBytesPerRound.toFixed(0)}, ` +
    `${pct(c.realUpBytesPerRound, c.simUpBytesPerRound)}), down ${c.realDownBytesPerRound.toFixed(0)} ` +
    `(simulated ${c.simDownBytesPerRound.toFixed(0)}, ${pct(c.realDownBytesPerRound, c.simDownBytesPerRound)}); ` +
    `validation loss at the same steps differs by at most ` +
    `${c.maxAbsLossDiff.toExponential(2)}` +
    (last ? ` (final: real ${last.real.toFixed(4)}, simulated ${last.sim.toFixed(4)})` : '') +
    '.'
  );
}
