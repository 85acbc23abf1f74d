// Pure rendering of benchmark results: matmul rows from raw samples, the console table, the
// Markdown section in docs/BENCHMARKS.md (replaced in place between markers, so reruns refresh it).
import type { AdapterDescription, MatmulResults, MatmulRow, MatmulSizeResult } from './matmul-types';
import { gflops, matmulFlops, matmulTolerance, median } from './stats';

/** 'SwiftShader' if any adapter field names it (Chromium's software WebGPU), else 'real'. */
export function classifyBackend(
  a: Pick<AdapterDescription, 'vendor' | 'architecture' | 'device' | 'description'>,
): 'SwiftShader' | 'real' {
  return [a.vendor, a.architecture, a.device, a.description].some((s) => /swiftshader/i.test(s))
    ? 'SwiftShader'
    : 'real';
}

/** One table row from one size's samples: medians, GFLOP/s, and the correctness verdict. */
export function matmulRow(r: MatmulSizeResult): MatmulRow {
  const oursMs = median(r.oursSamplesMs);
  const tfjsMs = median(r.tfjsSamplesMs);
  const tolerance = matmulTolerance(r.size);
  const valid = r.maxAbsDiff <= tolerance && r.oursRefErr <= tolerance && r.tfjsRefErr <= tolerance;
  const flops = matmulFlops(r.size);
  // A side that disagrees with the reference posts no speed; if only the comparison fails, neither does.
  const oursOk = valid || (r.oursRefErr <= tolerance && r.tfjsRefErr > tolerance);
  const tfjsOk = valid || (r.tfjsRefErr <= tolerance && r.oursRefErr > tolerance);
  const oursGflops = oursOk ? gflops(flops, oursMs) : null;
  const tfjsGflops = tfjsOk ? gflops(flops, tfjsMs) : null;
  // The simple variant is a column of its own: it posts a speed only if it agrees with the reference.
  const simple: Partial<MatmulRow> = {};
  if (r.simpleSamplesMs?.length) {
    const simpleMs = median(r.simpleSamplesMs);
    const simpleRefErr = r.simpleRefErr ?? Infinity;
    const simpleGflops = simpleRefErr <= tolerance ? gflops(flops, simpleMs) : null;
    Object.assign(simple, {
      simpleMs,
      simpleRefErr,
      simpleGflops,
      simpleRatio: simpleGflops !== null && tfjsGflops !== null ? simpleGflops / tfjsGflops : null,
    });
  }
  return {
    what: `${r.size}³`,
    ours: oursGflops,
    theirs: tfjsGflops,
    size: r.size,
    ...(r.variant ? { variant: r.variant } : {}),
    oursGflops,
    tfjsGflops,
    ratio: oursGflops !== null && tfjsGflops !== null ? oursGflops / tfjsGflops : null,
    ...simple,
    oursMs,
    tfjsMs,
    maxAbsDiff: r.maxAbsDiff,
    oursRefErr: r.oursRefErr,
    tfjsRefErr: r.tfjsRefErr,
    tolerance,
    valid,
    batch: r.batch,
    repeats: r.oursSamplesMs.length,
  };
}

const fmt = (x: number | null, digits: number) => (x === null ? 'FAIL' : x.toFixed(digits));
const fmtMs = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toFixed(3));
const fmtDiff = (x: number) => (Number.isFinite(x) ? x.toExponential(1) : 'NaN');

const HEADERS = [
  'size',
  'ours (variant)',
  'ours GFLOP/s',
  'TF.js GFLOP/s',
  'ours/TF.js',
  'simple GFLOP/s',
  'simple/TF.js',
  'ours ms',
  'TF.js ms',
  'simple ms',
  'max |diff|',
  'batch×repeats',
];

const fmtRatio = (x: number | null | undefined) => (x === null || x === undefined ? '—' : `${x.toFixed(2)}×`);

function cells(r: MatmulRow): string[] {
  const measured = r.simpleMs !== undefined;
  return [
    `${r.size}³`,
    r.variant ?? '—',
    fmt(r.oursGflops, 3),
    fmt(r.tfjsGflops, 3),
    fmtRatio(r.ratio),
    measured ? fmt(r.simpleGflops ?? null, 3) : '—',
    fmtRatio(r.simpleRatio),
    fmtMs(r.oursMs),
    fmtMs(r.tfjsMs),
    measured ? fmtMs(r.simpleMs as number) : '—',
    fmtDiff(r.maxAbsDiff) + (r.valid ? '' : ' ✗'),
    `${r.batch}×${r.repeats}`,
  ];
}

/** A fixed-width text table for the terminal. */
export function formatTable(rows: readonly MatmulRow[]): string {
  const body = rows.map(cells);
  const widths = HEADERS.map((h, i) => Math.max(h.length, ...body.map((c) => c[i].length)));
  const line = (cs: string[]) => cs.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(HEADERS), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/** The same table in GitHub Markdown. */
export function markdownTable(rows: readonly MatmulRow[]): string {
  const esc = (c: string) => c.replace(/\|/g, '\\|');
  const line = (cs: string[]) => `| ${cs.map(esc).join(' | ')} |`;
  const sep = `| ${HEADERS.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`;
  return [line(HEADERS), sep, ...rows.map((r) => line(cells(r)))].join('\n');
}

export const sectionStart = (id: string) => `<!-- bench:${id}:start -->`;
export const sectionEnd = (id: string) => `<!-- bench:${id}:end -->`;

const DOC_HEADER = `# Benchmarks

Each section below is written by \`npm run bench -- <name>\` and replaced in place when the benchmark
is run again (between its \`<!-- bench:<name>:start/end -->\` markers; edit outside them). The raw
numbers are in \`bench/results/<name>.json\`. Speeds measured on SwiftShader (Chromium's CPU
implementation of WebGPU) say nothing about real GPUs; the ratio against TF.js measured in the same
page is the meaningful number there.
`;

/** `doc` with the section `id` replaced by `body` (markers included), or appended if it is new. */
export function upsertSection(doc: string, id: string, body: string): string {
  const start = sectionStart(id);
  const end = sectionEnd(id);
  const block = `${start}\n${body.trim()}\n${end}`;
  if (doc.trim() === '') return `${DOC_HEADER}\n${block}\n`;
  const i = doc.indexOf(start);
  const j = doc.indexOf(end);
  if (i >= 0 && j > i) return doc.slice(0, i) + block + doc.slice(j + end.length);
  if (i >= 0 || j >= 0)
    throw new Error(`docs section "${id}" has a start or end marker missing; fix the markers by hand`);
  return `${doc.replace(/\s*$/, '')}\n\n${block}\n`;
}

/** The docs/BENCHMARKS.md section for a matmul run. */
export function matmulSection(res: MatmulResults): string {
  const d = res.device;
  const bad = res.rows.filter((r) => !r.valid);
  const lines = [
    '## matmul: our WGSL matmul vs TF.js `tf.matMul` (WebGPU backend)',
    '',
    `Square f32 products C = A·B, inputs uniform in [-1, 1). Run ${res.date.slice(0, 10)}; reproduce with:`,
    '',
    '```sh',
    res.command,
    '```',
    '',
    markdownTable(res.rows),
    '',
    `GFLOP/s = 2·n³ / (median ms per product). Ratio > 1 means ours is faster. "ours" is the variant our ` +
      `selector (\`chooseMatmulVariant\` in \`src/gpu/kernels/matmul.ts\`) picks for the size on this device; ` +
      `"simple" is our simple variant (\`shaders/matmul.wgsl\`: ` +
      `64×64 tiles, scalar loads), timed the same way for comparison. ` +
      `"batch×repeats": products submitted back to back per timed sample × timed samples.` +
      (bad.length
        ? ` **${bad.length} size(s) failed the correctness check ` +
          `(marked ✗ / FAIL): no speed is posted for a side that is wrong.**`
        : ''),
    '',
    '**Machine.**',
    '',
    `- WebGPU adapter: ${d.adapter.summary} (backend: **${d.backend}**` +
      `${d.adapter.isFallbackAdapter && !/fallback/.test(d.adapter.summary) ? ', fallback adapter' : ''})`,
    `- Browser: Chromium ${d.chromium}, headless; user agent \`${d.userAgent}\``,
    `- Host: ${d.host.cpu}, ${d.host.cores} cores, ${d.host.memGiB} GiB RAM, ${d.host.platform}, Node ${d.host.node}`,
    `- TF.js ${d.tfjsVersion}, backend \`${d.tfjsBackend}\`; ours: \`${d.oursLauncher}\``,
    ...(d.limits
      ? [
          `- Device limits our variant selector saw: ${Object.entries(d.limits)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')}`,
        ]
      : []),
    '',
    '**Method.** ' + res.method,
  ];
  if (d.backend === 'SwiftShader') {
    lines.push(
      '',
      '_SwiftShader runs WebGPU on the CPU: absolute GFLOP/s here only rank kernels against each other on this ' +
        'machine. Run with `STARLING_GPU=vulkan` on a machine with a GPU for real numbers._',
    );
  }
  return lines.join('\n');
}
