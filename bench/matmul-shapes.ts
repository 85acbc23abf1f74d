// `npm run bench -- matmul --gpt-shapes`: the matmul products of one GPT training step (forward,
// weight gradients, input gradients; full rank and low rank), timed in Node on Node's WebGPU (Dawn;
// SwiftShader on a machine without a GPU). For each distinct shape it times, in the same run and
// interleaved (rotating who goes first), the plan matmulLaunches picks ("chosen", split K allowed, with
// a scratch buffer), the single launch matmulLaunch picks when that differs, the `simple` variant,
// and any variants named with --variants; it reports the median ms per product and the total per
// training step (each shape times how often a step runs it). Outputs are checked against a float64
// CPU dot product on sampled entries before any time is reported.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, resolve } from 'node:path';
import { createStorage, readF32 } from '../src/gpu/buffers';
import { encodeLaunches, destroyLaunch, type Launch } from '../src/gpu/launch';
import { acquireNodeDevice } from '../src/gpu/node-device';
import {
  MATMUL_VARIANTS,
  matmulLaunch,
  matmulLaunches,
  matmulScratchBytes,
  matmulVariantSupport,
  paddedWork,
  planMatmul,
  resolveMatmulShape,
  type MatmulLimits,
  type MatmulShape,
  type MatmulVariantName,
} from '../src/gpu/kernels/matmul';
import { median, mulberry32, randomMatrix } from './stats';

/**
 * CPU ms used so far by this process's threads other than the main one (SwiftShader runs workgroups
 * on worker threads; Linux /proc schedstat, nanosecond resolution), or NaN where /proc is missing.
 * Unlike wall time it ignores how much of the machine other processes take.
 */
export function workerCpuMs(): number {
  if (!existsSync('/proc/self/task')) return NaN;
  let ns = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    if (Number(tid) === process.pid) continue;
    try {
      ns += Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread exited
    }
  }
  return ns / 1e6;
}

/** One product of the training step and how many times a step runs it. */
export interface GptShape {
  label: string;
  shape: MatmulShape;
  count: number;
}

export interface GptShapeConfig {
  /** Rows per step (batch · sequence length). */
  rows: number;
  width: number;
  vocab: number;
  layers: number;
  /** Low-rank factor rank of every block linear (0: full rank). */
  rank: number;
}

export const GPT_SHAPES_DEFAULT: GptShapeConfig = { rows: 1024, width: 64, vocab: 65, layers: 2, rank: 0 };

/**
 * The products src/model/gpt-gpu.ts runs in one training step, merged by shape. Per block: c_attn
 * (C → 3C), attn c_proj (C → C), c_fc (C → 4C), mlp c_proj (4C → C); each linear runs its forward
 * (out = inp·Wᵀ), weight gradient (dW = doutᵀ·inp, K = rows) and input gradient (dinp = dout·W), or
 * with rank r > 0 the six products of its factors. The head (tied or not) adds three more.
 */
export function gptShapes(cfg: GptShapeConfig = GPT_SHAPES_DEFAULT): GptShape[] {
  const { rows: N, width: C, vocab: V, layers: L, rank: r } = cfg;
  const out = new Map<string, GptShape>();
  const add = (label: string, shape: MatmulShape, count: number) => {
    const key = JSON.stringify([shape.M, shape.N, shape.K, Boolean(shape.transA), Boolean(shape.transB)]);
    const had = out.get(key);
    if (had) {
      had.count += count;
      if (!had.label.includes(label)) had.label += `, ${label}`;
    } else out.set(key, { label, shape, count });
  };
  const linears: [string, number, number][] = [
    ['c_attn', C, 3 * C],
    ['attn.c_proj', C, C],
    ['c_fc', C, 4 * C],
    ['mlp.c_proj', 4 * C, C],
  ];
  for (const [name, inp, o] of linears) {
    if (r > 0) {
      add(`${name} fwd h`, { M: N, N: r, K: inp }, L);
      add(`${name} fwd out`, { M: N, N: o, K: r, transB: true }, L);
      add(`${name} dh`, { M: N, N: r, K: o }, L);
      add(`${name} dU`, { M: o, N: r, K: N, transA: true }, L);
      add(`${name} dV`, { M: inp, N: r, K: N, transA: true }, L);
      add(`${name} dinp`, { M: N, N: inp, K: r, transB: true }, L);
    } else {
      add(`${name} fwd`, { M: N, N: o, K: inp, transB: true }, L);
      add(`${name} dW`, { M: o, N: inp, K: N, transA: true }, L);
      add(`${name} dinp`, { M: N, N: inp, K: o }, L);
    }
  }
  add('head fwd', { M: N, N: V, K: C, transB: true }, 1);
  add('head dW', { M: V, N: C, K: N, transA: true }, 1);
  add('head dinp', { M: N, N: C, K: V }, 1);
  return [...out.values()];
}

export function describeGptShape(s: MatmulShape): string {
  return `${s.M}×${s.N}×${s.K}${s.transA ? ' Aᵀ' : ''}${s.transB ? ' Bᵀ' : ''}`;
}

export interface GptShapesOptions {
  /** Extra forced configurations: a variant name, optionally ':splits' (e.g. direct-64:4). */
  variants: string[];
  repeats: number;
  targetMs: number;
  maxBatch: number;
  seed: number;
  rank: number[];
  /** Only shapes whose label or description contains one of these (e.g. 'dW', 'Aᵀ'); empty: all. */
  only?: string[];
  out?: string;
}

export interface GptShapeRow {
  label: string;
  shape: string;
  count: number;
  /** What "chosen" is: variant, and splits when K is split. */
  plan: string;
  /** The single-launch choice (matmulLaunch), when it differs from the plan. */
  single?: string;
  /** What the selector picked before the direct variants (legacyChoice); 'before' in ms. */
  before: string;
  /** Median wall ms per product, by configuration ('chosen', 'single', 'before', 'simple', forced names). */
  ms: Record<string, number>;
  /** Median CPU ms of the worker threads (workerCpuMs) per product, by configuration. */
  cpuMs: Record<string, number>;
  /** Max |error| / tolerance over the sampled entries, by configuration (must be <= 1). */
  check: Record<string, number>;
}

interface Config {
  name: string;
  launches: Launch[];
  c: GPUBuffer;
}

const parseForced = (spec: string): { variant: MatmulVariantName; splits?: number } => {
  const [v, sp] = spec.split(':');
  if (!Object.hasOwn(MATMUL_VARIANTS, v))
    throw new Error(`unknown matmul variant "${v}" (have ${Object.keys(MATMUL_VARIANTS).join(', ')})`);
  return { variant: v as MatmulVariantName, ...(sp ? { splits: Number(sp) } : {}) };
};

/**
 * The variant the selector picked before the direct variants and the cost model (commit 1efddb9):
 * least padded work / speed among simple (1), tuned (2, vec4 loads) and tuned-scalar (1.8). Timed as
 * 'before', so one run shows before and after.
 */
export function legacyChoice(limits: MatmulLimits, shape: MatmulShape): MatmulVariantName {
  const speeds: [MatmulVariantName, number][] = [
    ['simple', 1],
    ['tuned', 2],
    ['tuned-scalar', 1.8],
  ];
  let best: MatmulVariantName = 'simple';
  let bestCost = Infinity;
  for (const [name, speed] of speeds) {
    if (matmulVariantSupport(MATMUL_VARIANTS[name], limits, shape)) continue;
    const cost = paddedWork(MATMUL_VARIANTS[name], shape) / speed;
    if (cost < bestCost) [best, bestCost] = [name, cost];
  }
  return best;
}

function planName(p: { variant: { name: string }; splits: number }): string {
  return p.splits > 1 ? `${p.variant.name} ×${p.splits} K-splits` : p.variant.name;
}

/** Times one shape: every configuration built once, then samples interleaved. */
async function timeShape(
  device: GPUDevice,
  g: GptShape,
  o: GptShapesOptions,
  log: (s: string) => void,
): Promise<GptShapeRow> {
  const s = resolveMatmulShape(g.shape);
  const rand = mulberry32(o.seed + s.M * 7 + s.N * 13 + s.K);
  const aHost = randomMatrix(s.M * s.K, rand);
  const bHost = randomMatrix(s.K * s.N, rand);
  const a = createStorage(device, aHost, 'gpt-shapes-A');
  const b = createStorage(device, bHost, 'gpt-shapes-B');
  const scratchBytes = Math.max(
    4,
    matmulScratchBytes(device.limits, s),
    ...o.variants.map((v) => 4 * s.M * s.N * (parseForced(v).splits ?? 1)),
  );
  const scratch = createStorage(device, scratchBytes, 'gpt-shapes-scratch');
  const plan = planMatmul(device.limits, s, { scratchBytes });
  const single = planMatmul(device.limits, s);
  const configs: Config[] = [];
  const add = (name: string, make: (c: GPUBuffer) => Launch[]) => {
    const c = createStorage(device, new Float32Array(s.M * s.N).fill(NaN), `gpt-shapes-C-${name}`);
    configs.push({ name, launches: make(c), c });
  };
  add('chosen', (c) => matmulLaunches(device, s, { a, b, c, scratch }));
  if (plan.splits > 1 || single.variant !== plan.variant) add('single', (c) => [matmulLaunch(device, s, { a, b, c })]);
  const before = legacyChoice(device.limits, s);
  if (before !== 'simple') add('before', (c) => [matmulLaunch(device, s, { a, b, c }, { variant: before })]);
  add('simple', (c) => [matmulLaunch(device, s, { a, b, c }, { variant: 'simple' })]);
  for (const spec of o.variants) add(spec, (c) => matmulLaunches(device, s, { a, b, c, scratch }, parseForced(spec)));

  // Waiting on the GPU: Node's WebGPU resolves onSubmittedWorkDone by polling on the main thread,
  // which keeps a core busy (measured: as much CPU as each SwiftShader worker), so on a 2-core
  // machine an immediate await slows the kernel it waits for. Each sample therefore first sleeps
  // for 85% of the configuration's last sample, then awaits; an oversleep shows as a shorter next
  // sleep, so the sleep converges under the kernel's own time during the untimed warm-up runs.
  const lastMs = configs.map(() => 0);
  const runK = async (i: number, k: number): Promise<[number, number]> => {
    const enc = device.createCommandEncoder({ label: 'gpt-shapes' });
    const all: Launch[] = [];
    for (let j = 0; j < k; j++) all.push(...configs[i].launches);
    encodeLaunches(enc, all);
    const cpu = workerCpuMs();
    const t = performance.now();
    device.queue.submit([enc.finish()]);
    if (lastMs[i] > 2) await new Promise((r) => setTimeout(r, 0.85 * lastMs[i]));
    await device.queue.onSubmittedWorkDone();
    const wall = performance.now() - t;
    lastMs[i] = wall;
    return [wall, workerCpuMs() - cpu];
  };
  try {
    for (let i = 0; i < configs.length; i++) await runK(i, 1); // compiles
    let est = Infinity;
    for (let i = 0; i < configs.length; i++) est = Math.min(est, (await runK(i, 1))[0]);
    const k = Math.max(1, Math.min(o.maxBatch, Math.round(o.targetMs / Math.max(est, 1e-3))));
    for (let i = 0; i < configs.length; i++) {
      lastMs[i] = 0;
      for (let w = 0; w < 3; w++) await runK(i, k); // warm-up: the sleep converges
    }
    const samples = configs.map(() => [] as number[]);
    const cpuSamples = configs.map(() => [] as number[]);
    for (let r = 0; r < o.repeats; r++) {
      for (let j = 0; j < configs.length; j++) {
        const i = (j + r) % configs.length;
        const [wall, cpu] = await runK(i, k);
        samples[i].push(wall / k);
        cpuSamples[i].push(cpu / k);
      }
    }
    // Check sampled entries of each output against a float64 dot product.
    const check: Record<string, number> = {};
    const picks = Array.from({ length: Math.min(256, s.M * s.N) }, (_, i) =>
      i === 0 ? s.M * s.N - 1 : Math.floor(rand() * s.M * s.N),
    );
    for (const c of configs) {
      const got = await readF32(device, c.c, s.M * s.N);
      let worst = 0;
      for (const idx of picks) {
        const i = Math.floor(idx / s.N);
        const j = idx % s.N;
        let acc = 0;
        let mag = 0;
        for (let kk = 0; kk < s.K; kk++) {
          const av = s.transA ? aHost[kk * s.M + i] : aHost[i * s.K + kk];
          const bv = s.transB ? bHost[j * s.K + kk] : bHost[kk * s.N + j];
          acc += av * bv;
          mag += Math.abs(av * bv);
        }
        const tol = (s.K + 1) * 2 ** -23 * mag;
        const err = Math.abs(got[idx] - acc);
        worst = Math.max(worst, Number.isNaN(err) ? Infinity : err / tol);
      }
      check[c.name] = worst;
    }
    const ms = Object.fromEntries(configs.map((c, i) => [c.name, median(samples[i])]));
    const cpuMs = Object.fromEntries(configs.map((c, i) => [c.name, median(cpuSamples[i])]));
    const row: GptShapeRow = {
      label: g.label,
      shape: describeGptShape(s),
      count: g.count,
      plan: planName(plan),
      ...(configs.some((c) => c.name === 'single') ? { single: planName(single) } : {}),
      before,
      ms,
      cpuMs,
      check,
    };
    const bad = Object.entries(check).filter(([, v]) => !(v <= 1));
    log(
      `  ${row.shape.padEnd(20)} ×${g.count}  ${row.plan.padEnd(24)} (before: ${before}) ` +
        Object.entries(ms)
          .map(([n, v]) => `${n} ${v.toFixed(2)}/${cpuMs[n].toFixed(2)}`)
          .join('  ') +
        `  (batch ${k})` +
        (bad.length ? `  ✗ WRONG: ${bad.map(([n, v]) => `${n} error/tolerance ${v}`).join(', ')}` : ''),
    );
    return row;
  } finally {
    configs.forEach((c) => {
      c.launches.forEach(destroyLaunch);
      c.c.destroy();
    });
    [a, b, scratch].forEach((x) => x.destroy());
  }
}

export interface GptShapesResult {
  bench: 'matmul-gpt-shapes';
  date: string;
  host: { cpu: string; cores: number; node: string };
  adapter: string;
  lists: { rank: number; rows: GptShapeRow[]; totals: Record<string, number>; cpuTotals: Record<string, number> }[];
}

/** Sum over shapes of count × ms (or cpuMs), per configuration present in every row (forced ones too). */
export function stepTotals(rows: readonly GptShapeRow[], field: 'ms' | 'cpuMs' = 'ms'): Record<string, number> {
  const names = new Set(['before', ...rows.flatMap((r) => Object.keys(r.ms))]);
  const totals: Record<string, number> = {};
  for (const n of names) {
    // 'single' is only timed where it differs from 'chosen', 'before' where it differs from 'simple'.
    const pick = (r: GptShapeRow) =>
      r[field][n] ?? (n === 'single' ? r[field].chosen : n === 'before' ? r[field].simple : undefined);
    if (rows.every((r) => pick(r) !== undefined)) totals[n] = rows.reduce((t, r) => t + r.count * pick(r), 0);
  }
  return totals;
}

/** Runs the GPT-shapes benchmark; resolves to the exit code (1 if any output failed its check). */
export async function runGptShapesBench(o: GptShapesOptions, log: (s: string) => void = console.log): Promise<number> {
  const { device, adapterInfo: adapter } = await acquireNodeDevice();
  log(
    `matmul gpt-shapes: ${adapter}; ${o.repeats} interleaved samples per configuration, median wall/CPU ms per product`,
  );
  const result: GptShapesResult = {
    bench: 'matmul-gpt-shapes',
    date: new Date().toISOString(),
    host: { cpu: cpus()[0]?.model.trim() ?? 'unknown CPU', cores: cpus().length, node: process.version },
    adapter,
    lists: [],
  };
  let failed = false;
  for (const rank of o.rank) {
    const cfg = { ...GPT_SHAPES_DEFAULT, rank };
    log(
      `GPT rows ${cfg.rows}, width ${cfg.width}, vocab ${cfg.vocab}, ` +
        `${cfg.layers} layers, ${rank ? `rank ${rank}` : 'full rank'}:`,
    );
    const rows: GptShapeRow[] = [];
    const only = o.only ?? [];
    for (const g of gptShapes(cfg)) {
      if (only.length && !only.some((w) => g.label.includes(w) || describeGptShape(g.shape).includes(w))) continue;
      const row = await timeShape(device, g, o, log);
      if (Object.values(row.check).some((v) => !(v <= 1))) failed = true;
      rows.push(row);
    }
    const totals = stepTotals(rows);
    const cpuTotals = stepTotals(rows, 'cpuMs');
    for (const [what, t] of [
      ['wall', totals],
      ['worker CPU', cpuTotals],
    ] as const) {
      log(
        `  total per step (${what} ms): ${Object.entries(t)
          .map(([n, v]) => `${n} ${v.toFixed(1)}`)
          .join('  ')}` +
          (t.before && t.chosen ? `  → chosen is ${(t.before / t.chosen).toFixed(2)}× faster than before` : ''),
      );
    }
    result.lists.push({ rank, rows, totals, cpuTotals });
  }
  if (o.out) {
    const path = resolve(o.out);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, JSON.stringify(result, null, 2) + '\n');
    log(`matmul gpt-shapes: wrote ${o.out}`);
  }
  return failed ? 1 : 0;
}
