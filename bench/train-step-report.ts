// Pure parts of the train-step benchmark: the agreement check between the two sides, rows from raw
// samples, the console table and the docs/BENCHMARKS.md section. Unit-tested in bench/train-step.test.ts.
import { median } from './stats';
import type { TrainStepCheck, TrainStepModelResult, TrainStepResults, TrainStepRow } from './train-step-types';

/**
 * Allowed |ours − theirs| (and |side − float64 CPU|) of the step-0 loss, relative to max(1, |loss|).
 * Step 0 is computed before any update, from identical f32 weights on an identical batch, so the two
 * differ only by f32 rounding in different summation orders: the logits are dot products of ≤ k·D or H
 * terms (relative error ≲ K·u ≈ 3e-5 worst case for K = 512, ~√K·u typically), and the loss averages
 * B rows of log-sum-exp. Measured differences are ~1e-7 relative; a wrong kernel, a mis-ordered weight
 * (Linear [out, in] read as [in, out]) or a stale buffer is off by 1e-2 or more.
 */
export const STEP0_REL_TOL = 1e-5;

/**
 * Allowed |ours − theirs| of the losses of later check steps (after 1, 2, … AdamW updates), relative to
 * max(1, |loss|). AdamW's first steps move each weight by about ±lr whatever the gradient's size, so a
 * gradient that is ~0 on one side and ~-0 on the other moves the weight 2·lr apart; those elements are few
 * and the loss barely notices (measured ≲ 1e-6 relative). A wrong gradient, sign or optimizer changes the
 * loss by ~lr·|∇L|·√P, over 1e-3 here.
 */
export const LATER_REL_TOL = 1e-4;

const absDiff = (a: number, b: number) => {
  const d = Math.abs(a - b);
  return Number.isNaN(d) ? Infinity : d;
};

/**
 * Judges whether the two sides trained the same model: step-0 loss vs each other and the CPU, later losses vs each
 * other.
 */
export function checkTrainStep(
  r: Pick<TrainStepModelResult, 'oursCheckLosses' | 'theirsCheckLosses' | 'cpuLoss0'>,
): TrainStepCheck {
  const o = r.oursCheckLosses;
  const t = r.theirsCheckLosses;
  if (o.length === 0 || o.length !== t.length)
    throw new RangeError(`need the same nonzero number of check losses, got ${o.length} and ${t.length}`);
  const ref = r.cpuLoss0 ?? o[0];
  const scale = Number.isFinite(ref) ? Math.max(1, Math.abs(ref)) : 1;
  const step0Tol = STEP0_REL_TOL * scale;
  const laterTol = LATER_REL_TOL * scale;
  const step0Diff = absDiff(o[0], t[0]);
  let laterDiff = 0;
  for (let i = 1; i < o.length; i++) laterDiff = Math.max(laterDiff, absDiff(o[i], t[i]));
  const oursCpuDiff = r.cpuLoss0 === null ? null : absDiff(o[0], r.cpuLoss0);
  const theirsCpuDiff = r.cpuLoss0 === null ? null : absDiff(t[0], r.cpuLoss0);
  const finite = [...o, ...t].every(Number.isFinite);
  const oursCpuOk = oursCpuDiff === null || oursCpuDiff <= step0Tol;
  const theirsCpuOk = theirsCpuDiff === null || theirsCpuDiff <= step0Tol;
  const valid = finite && step0Diff <= step0Tol && laterDiff <= laterTol && oursCpuOk && theirsCpuOk;
  // If they disagree, a side is cleared only by the CPU reference saying the other one is wrong.
  const oursFinite = o.every(Number.isFinite);
  const theirsFinite = t.every(Number.isFinite);
  const oursOk = valid || (oursFinite && oursCpuDiff !== null && oursCpuOk && (!theirsCpuOk || !theirsFinite));
  const theirsOk = valid || (theirsFinite && theirsCpuDiff !== null && theirsCpuOk && (!oursCpuOk || !oursFinite));
  return { step0Diff, step0Tol, laterDiff, laterTol, oursCpuDiff, theirsCpuDiff, oursOk, theirsOk, valid };
}

/** Tokens per second from tokens per step and milliseconds per step. */
export function tokensPerSec(tokensPerStep: number, msPerStep: number): number {
  if (!(msPerStep > 0)) throw new RangeError(`time must be positive, got ${msPerStep} ms`);
  return (tokensPerStep * 1000) / msPerStep;
}

/** One table row from one model's raw result: medians, ratio, tokens/s, and the check's verdict. */
export function trainStepRow(r: TrainStepModelResult): TrainStepRow {
  const check = checkTrainStep(r);
  const oursMs = median(r.oursSamplesMs);
  const theirsMs = median(r.theirsSamplesMs);
  const ours = check.oursOk ? oursMs : null;
  const theirs = check.theirsOk ? theirsMs : null;
  return {
    what: r.what,
    id: r.id,
    ours,
    theirs,
    ratio: ours !== null && theirs !== null ? theirs / ours : null,
    oursTokensPerSec: ours === null ? null : tokensPerSec(r.tokensPerStep, ours),
    theirsTokensPerSec: theirs === null ? null : tokensPerSec(r.tokensPerStep, theirs),
    paramCount: r.paramCount,
    tokensPerStep: r.tokensPerStep,
    stepsPerSample: r.stepsPerSample,
    repeats: r.oursSamplesMs.length,
    oursLoss0: r.oursCheckLosses[0],
    theirsLoss0: r.theirsCheckLosses[0],
    check,
    paramMaxAbsDiff: r.paramMaxAbsDiff,
    tfTensorLeak: r.tfTensorsAfterTiming - r.tfTensorsAfterWarmup,
    theirsKernelsPerStep: r.theirsKernelsPerStep,
  };
}

const fmtMs = (x: number | null) =>
  x === null ? 'FAIL' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
const fmtRate = (x: number | null) => (x === null ? 'FAIL' : x >= 100 ? x.toFixed(0) : x.toFixed(1));
const fmtE = (x: number) => (Number.isFinite(x) ? x.toExponential(1) : 'NaN');

const HEADERS = [
  'what',
  'ours ms/step',
  'TF.js ms/step',
  'TF.js/ours',
  'ours tok/s',
  'TF.js tok/s',
  'params',
  'step-0 loss',
  '|Δloss| 0 / later',
  'TF.js kernels/step',
  'steps×repeats',
];

function cells(r: TrainStepRow): string[] {
  return [
    r.what,
    fmtMs(r.ours),
    fmtMs(r.theirs),
    r.ratio === null ? '—' : `${r.ratio.toFixed(2)}×`,
    fmtRate(r.oursTokensPerSec),
    fmtRate(r.theirsTokensPerSec),
    r.paramCount.toLocaleString('en-US'),
    Number.isFinite(r.oursLoss0) ? r.oursLoss0.toFixed(4) : String(r.oursLoss0),
    `${fmtE(r.check.step0Diff)} / ${fmtE(r.check.laterDiff)}` + (r.check.valid ? '' : ' ✗'),
    r.theirsKernelsPerStep === null ? '?' : String(r.theirsKernelsPerStep),
    `${r.stepsPerSample}×${r.repeats}`,
  ];
}

/** A fixed-width text table for the terminal. */
export function formatTrainStepTable(rows: readonly TrainStepRow[]): string {
  const body = rows.map(cells);
  const widths = HEADERS.map((h, i) => Math.max(h.length, ...body.map((c) => c[i].length)));
  const line = (cs: string[]) => cs.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(HEADERS), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/** The same table in GitHub Markdown. */
export function trainStepMarkdownTable(rows: readonly TrainStepRow[]): string {
  const esc = (c: string) => c.replace(/\|/g, '\\|');
  const line = (cs: string[]) => `| ${cs.map(esc).join(' | ')} |`;
  const sep = `| ${HEADERS.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`;
  return [line(HEADERS), sep, ...rows.map((r) => line(cells(r)))].join('\n');
}

/** The docs/BENCHMARKS.md section for a train-step run. */
export function trainStepSection(res: TrainStepResults): string {
  const d = res.device;
  const bad = res.rows.filter((r) => !r.check.valid);
  const hp = res.hp;
  const changes = res.tree?.changed.length
    ? ` with uncommitted changes to ${res.tree.changed.length} file(s) under src/ and shaders/ (listed in the JSON)`
    : '';
  const code = res.tree === null ? 'not a git checkout' : `commit \`${res.tree.commit}\`${changes}`;
  const lines = [
    '## Training step: one full training step of the MLP and the GPT, ours vs TF.js (WebGPU backend)',
    '',
    'Forward, backward, AdamW update and the loss read back to the CPU: what one local step costs a donor. ' +
      `AdamW lr ${hp.lr}, β ${hp.beta1}/${hp.beta2}, eps ${hp.eps}, weight ` +
      `decay ${hp.weightDecay}. Run ${res.date.slice(0, 10)}; reproduce with:`,
    '',
    '```sh',
    res.command,
    '```',
    '',
    trainStepMarkdownTable(res.rows),
    '',
    'ms/step: median over timed samples of (sample time / steps in it; ' +
      'every sample is in the JSON). "TF.js/ours" > 1 means ours is faster. tok/s: predicted tokens (batch rows) per ' +
      'second. "|Δloss| 0 / later": |ours − TF.js| of the step-0 loss (before any ' +
      `update; allowed ${STEP0_REL_TOL.toExponential(0)}·max(1, loss), and ` +
      `each side against a float64 CPU loss likewise) and the largest over ` +
      `the later check steps (after AdamW updates; allowed ${LATER_REL_TOL.toExponential(0)}·max(1, ` +
      `loss)). "TF.js kernels/step": kernel calls in one TF.js ` +
      `step (tf.profile); ours launches a fixed list per step in one command buffer ` +
      `(docs/KERNELS.md). "steps×repeats": steps per timed sample × timed samples per side.` +
      (bad.length
        ? ` **${bad.length} model(s) failed the agreement check ` +
          `(✗ / FAIL): no time is posted for a side that is wrong.**`
        : ''),
    '',
    '**Machine.**',
    '',
    `- WebGPU adapter: ${d.adapter.summary} (backend: **${d.backend}**` +
      `${d.adapter.isFallbackAdapter && !/fallback/.test(d.adapter.summary) ? ', fallback adapter' : ''})`,
    `- Browser: Chromium ${d.chromium}, headless; user agent \`${d.userAgent}\``,
    `- Host: ${d.host.cpu}, ${d.host.cores} cores, ${d.host.memGiB} GiB RAM, ${d.host.platform}, Node ${d.host.node}`,
    `- TF.js ${d.tfjsVersion}, backend \`${d.tfjsBackend}\``,
    `- Code: ${code}`,
    `- ours: ${res.oursImpl}`,
    `- TF.js: ${res.theirsImpl}`,
    '',
    '**Method.** ' + res.method,
  ];
  if (d.backend === 'SwiftShader') {
    lines.push(
      '',
      '_SwiftShader runs WebGPU on the CPU: absolute times here only rank the two implementations on this machine. ' +
        'Run with `STARLING_GPU=vulkan` on a machine with a GPU for real numbers._',
    );
  }
  return lines.join('\n');
}
