// Pure aggregation and rendering for the compression benchmark: per-arm figures over seeds (bytes per
// donor per step, compression ratio against dense f32, validation loss and its gap, simulated time to
// reach dense's final loss × 1.02 on two links), the console/Markdown table and the SVG plot.
import type { SimResult } from './compression-sim';
import { median } from './stats';

export interface Link {
  name: string;
  upMbps: number;
  downMbps: number;
  rttMs: number;
}

export const LINKS: Link[] = [
  { name: '10/50 Mbps, 40 ms', upMbps: 10, downMbps: 50, rttMs: 40 },
  { name: '100/100 Mbps, 20 ms', upMbps: 100, downMbps: 100, rttMs: 20 },
];

/** Target: dense's final validation loss (same seed) × this. */
export const TARGET_FACTOR = 1.02;

export interface ArmRow {
  name: string;
  codec: string;
  downCodec: string;
  localSteps: number;
  seeds: number;
  upBytesPerStep: number;
  downBytesPerStep: number;
  /** (dense up + down) / (this arm's up + down), per training step. */
  ratio: number;
  /** Compute time of one local step in this arm (ms; the median over its runs' rounds, see armStepMs). */
  stepMs: number;
  upRatio: number;
  valLoss: number;
  valLossPerSeed: number[];
  gapPct: number;
  /** Mean over seeds of the simulated seconds to the target; null where a seed never reached it. */
  secondsToTarget: Record<string, number | null>;
  speedup: Record<string, number | null>;
  identical: boolean;
  encodeMs: number;
  commitMs: number;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Simulated wall time of one round: H compute steps, encode, coordinator, one RTT, both transfers. */
export function roundSeconds(r: SimResult, link: Link, stepMs: number): number {
  const comm = (8 * r.upBytesPerRound) / (link.upMbps * 1e6) + (8 * r.downBytesPerRound) / (link.downMbps * 1e6);
  return (r.arm.localSteps * stepMs + r.encodeMs + r.commitMs + link.rttMs) / 1000 + comm;
}

/** Seconds until the first validation at or below `target`, or null if the run never got there. */
export function secondsTo(r: SimResult, target: number, link: Link, stepMs: number): number | null {
  const perRound = roundSeconds(r, link, stepMs);
  const hit = r.curve.find((p) => p.valLoss <= target);
  return hit ? (hit.step / r.arm.localSteps) * perRound : null;
}

/**
 * One local step's compute time in an arm: the median over its seeds of each run's median
 * (round compute time)/H. Per arm, because a round's fixed costs differ with H: an H = 1 donor sets its
 * weights, trains one step and reads the weights back every step, an H = 10 donor once per 10 steps.
 */
export function armStepMs(runs: SimResult[]): number {
  return median(runs.map((r) => r.stepMs));
}

/** One row per arm, averaged over seeds. `baseline` names the dense arm; every arm is timed with its own armStepMs. */
export function aggregate(results: SimResult[], baseline: string, links: Link[] = LINKS): ArmRow[] {
  const byArm = new Map<string, SimResult[]>();
  for (const r of results) byArm.set(r.arm.name, [...(byArm.get(r.arm.name) ?? []), r]);
  const base = byArm.get(baseline);
  if (!base) throw new Error(`no results for the baseline arm ${baseline}`);
  const baseOf = (seed: number) => {
    const b = base.find((x) => x.seed === seed);
    if (!b) throw new Error(`baseline ${baseline} has no run with seed ${seed}`);
    return b;
  };
  const perStep = (r: SimResult) => ({
    up: r.upBytesPerRound / r.arm.localSteps,
    down: r.downBytesPerRound / r.arm.localSteps,
  });
  const baseUp = mean(base.map((r) => perStep(r).up));
  const baseDown = mean(base.map((r) => perStep(r).down));
  const baseStepMs = armStepMs(base);
  const baseTime: Record<string, number | null> = {};
  for (const l of links)
    baseTime[l.name] = meanOrNull(base.map((r) => secondsTo(r, r.finalValLoss * TARGET_FACTOR, l, baseStepMs)));
  const baseVal = mean(base.map((r) => r.finalValLoss));
  return [...byArm.values()].map((runs) => {
    const a = runs[0].arm;
    const up = mean(runs.map((r) => perStep(r).up));
    const down = mean(runs.map((r) => perStep(r).down));
    const val = mean(runs.map((r) => r.finalValLoss));
    const stepMs = armStepMs(runs);
    const secondsToTarget: Record<string, number | null> = {};
    const speedup: Record<string, number | null> = {};
    for (const l of links) {
      const t = meanOrNull(runs.map((r) => secondsTo(r, baseOf(r.seed).finalValLoss * TARGET_FACTOR, l, stepMs)));
      secondsToTarget[l.name] = t;
      const b = baseTime[l.name];
      speedup[l.name] = t !== null && b !== null ? b / t : null;
    }
    return {
      name: a.name,
      codec: a.codec,
      downCodec: a.downCodec,
      localSteps: a.localSteps,
      seeds: runs.length,
      upBytesPerStep: up,
      downBytesPerStep: down,
      ratio: (baseUp + baseDown) / (up + down),
      stepMs,
      upRatio: baseUp / up,
      valLoss: val,
      valLossPerSeed: runs.map((r) => r.finalValLoss),
      gapPct: (100 * (val - baseVal)) / baseVal,
      secondsToTarget,
      speedup,
      identical: runs.every((r) => r.identical),
      encodeMs: mean(runs.map((r) => r.encodeMs)),
      commitMs: mean(runs.map((r) => r.commitMs)),
    };
  });
}

function meanOrNull(xs: (number | null)[]): number | null {
  return xs.some((x) => x === null) ? null : mean(xs as number[]);
}

/** The arm that meets the bar best: ≤ 2% gap, then the highest ratio (null if none is within 2%). */
export function bestArm(rows: ArmRow[], maxGapPct = 2): ArmRow | null {
  const ok = rows.filter((r) => r.gapPct <= maxGapPct);
  return ok.length ? ok.reduce((a, b) => (b.ratio > a.ratio ? b : a)) : null;
}

const bytes = (b: number) =>
  b >= 1e6 ? `${(b / 1e6).toFixed(2)} MB` : b >= 1e3 ? `${(b / 1e3).toFixed(1)} kB` : `${b.toFixed(0)} B`;
const secs = (s: number | null) => (s === null ? 'never' : s >= 100 ? `${s.toFixed(0)} s` : `${s.toFixed(1)} s`);
const times = (x: number | null) => (x === null ? '—' : `${x >= 100 ? x.toFixed(0) : x.toFixed(1)}×`);

/** The Markdown table (one row per arm, in run order). */
export function formatTable(rows: ArmRow[], links: Link[] = LINKS): string {
  const head = [
    'arm',
    'H',
    'up codec',
    'down codec',
    'up B/step',
    'down B/step',
    'ratio',
    'ms/step',
    'val loss',
    'gap',
    ...links.map((l) => `to target, ${l.name}`),
    `speed-up, ${links[0].name}`,
  ];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => ' --- ').join('|')}|`];
  for (const r of rows) {
    lines.push(
      `| ${[
        r.name,
        r.localSteps,
        `\`${r.codec}\``,
        `\`${r.downCodec}\``,
        bytes(r.upBytesPerStep),
        bytes(r.downBytesPerStep),
        `${r.ratio >= 100 ? r.ratio.toFixed(0) : r.ratio.toFixed(1)}×`,
        r.stepMs.toFixed(1),
        r.valLoss.toFixed(4),
        `${r.gapPct >= 0 ? '+' : ''}${r.gapPct.toFixed(2)}%`,
        ...links.map((l) => secs(r.secondsToTarget[l.name])),
        times(r.speedup[links[0].name]),
      ].join(' | ')} |`,
    );
  }
  return lines.join('\n');
}

const PALETTE = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#17becf',
  '#bcbd22',
  '#7f7f7f',
];
const DASHES = ['', '6 3', '2 2'];

/**
 * Validation loss against cumulative bytes per donor (up + down, log scale), seed-mean curves, one line per arm (the
 * first, the baseline, in thick black).
 */
export function plotSvg(results: SimResult[], title: string): string {
  const W = 900;
  const Hh = 560;
  const m = { l: 70, r: 250, t: 40, b: 55 };
  const byArm = new Map<string, SimResult[]>();
  for (const r of results) byArm.set(r.arm.name, [...(byArm.get(r.arm.name) ?? []), r]);
  const series = [...byArm.entries()].map(([name, runs]) => ({
    name,
    pts: runs[0].curve.map((_p, k) => ({
      x: mean(runs.map((r) => r.curve[k].upBytes + r.curve[k].downBytes)),
      y: mean(runs.map((r) => r.curve[k].valLoss)),
    })),
  }));
  const xs = series.flatMap((s) => s.pts.map((p) => p.x)).filter((x) => x > 0);
  const finals = series.map((s) => s.pts[s.pts.length - 1].y);
  const x0 = Math.floor(Math.log10(Math.min(...xs)));
  const x1 = Math.ceil(Math.log10(Math.max(...xs)));
  // The interesting range: from the best final loss to a little above the worst final one.
  const yLo = Math.min(...finals) - 0.01;
  const yHi = Math.max(...finals) + 0.25 * (Math.max(...finals) - yLo) + 0.05;
  const px = (x: number) => m.l + ((Math.log10(x) - x0) / (x1 - x0)) * (W - m.l - m.r);
  const py = (y: number) => m.t + (1 - (y - yLo) / (yHi - yLo)) * (Hh - m.t - m.b);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${Hh}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${Hh}" fill="white"/>`,
    `<clipPath id="plot"><rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${Hh - m.t - m.b}"/></clipPath>`,
    `<text x="${m.l}" y="22" font-size="15">${escapeXml(title)}</text>`,
  ];
  for (let e = x0; e <= x1; e++) {
    const x = px(10 ** e);
    out.push(
      `<line x1="${x}" y1="${m.t}" x2="${x}" y2="${Hh - m.b}" stroke="#ddd"/>`,
      `<text x="${x}" y="${Hh - m.b + 16}" text-anchor="middle">1e${e}</text>`,
    );
  }
  for (let k = 0; k <= 5; k++) {
    const y = yLo + ((yHi - yLo) * k) / 5;
    out.push(
      `<line x1="${m.l}" y1="${py(y)}" x2="${W - m.r}" y2="${py(y)}" stroke="#eee"/>`,
      `<text x="${m.l - 6}" y="${py(y) + 4}" text-anchor="end">${y.toFixed(3)}</text>`,
    );
  }
  out.push(
    `<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${Hh - m.t - m.b}" fill="none" stroke="#999"/>`,
    `<text x="${(m.l + W - m.r) / 2}" y="${Hh - 12}" ` +
      `text-anchor="middle">bytes sent per donor, up + down (log scale)</text>`,
    `<text transform="translate(18 ${(m.t + Hh - m.b) / 2}) rotate(-90)" ` +
      `text-anchor="middle">validation loss (nats/token)</text>`,
  );
  series.forEach((s, i) => {
    const base = i === 0;
    const c = base ? '#000000' : PALETTE[(i - 1) % PALETTE.length];
    const dash = base ? '' : DASHES[Math.floor((i - 1) / PALETTE.length) % DASHES.length];
    const dashAttr = dash ? ` stroke-dasharray="${dash}"` : '';
    const style = `fill="none" stroke="${c}" stroke-width="${base ? 3 : 1.6}"${dashAttr}`;
    const d = s.pts
      .filter((p) => p.x > 0)
      .map((p, k) => `${k ? 'L' : 'M'}${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`)
      .join('');
    out.push(`<path d="${d}" ${style} clip-path="url(#plot)"/>`);
    const last = s.pts[s.pts.length - 1];
    out.push(
      `<circle cx="${px(last.x).toFixed(1)}" cy="${py(last.y).toFixed(1)}" r="3" fill="${c}" clip-path="url(#plot)"/>`,
    );
    const ly = m.t + 8 + i * 18;
    out.push(
      `<line x1="${W - m.r + 15}" y1="${ly}" x2="${W - m.r + 40}" y2="${ly}" ${style}/>`,
      `<text x="${W - m.r + 46}" y="${ly + 4}">${escapeXml(s.name)}</text>`,
    );
  });
  out.push('</svg>');
  return out.join('\n');
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
}
