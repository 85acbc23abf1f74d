// Top-k selection on the GPU (shaders/codec_topk.wgsl): the same kept set as src/compress/topk.ts
// (k largest |x|, ties to the lower index), found by three histogram passes and a deterministic
// compaction, with no CPU round trip in between. The GPU writes the kept (index, value) list (8·k
// bytes, instead of the 4·n of the whole update); the host reads it back and topkPayload serialises it
// with topk.ts's topkPack, the function the CPU encoder itself ends in, so the bytes are the CPU's.
import type { Codec, CodecContext } from '../../compress/codec';
import type { SparseCodec } from '../../compress/sparse';
import { topkPack } from '../../compress/topk';
import { readBuffer } from '../buffers';
import { createLaunch, requireBytes, requireDims, packUniform, type Binding, type Launch, type LaunchOptions } from '../launch';

/** Bins of the first histogram (bits 30..20 of |x|); the later two use 1024. */
export const TOPK_BINS = 2048;
/** Copies of the histogram (histogram workgroup p adds into copy p % 8, which cuts atomic contention). */
export const TOPK_HIST_COPIES = 8;
/** Most workgroups of a histogram pass (each strides over the input). */
export const TOPK_MAX_PARTS = 256;
/** Most segments (count / compaction invocations); longer inputs get longer segments. */
export const TOPK_MAX_SEGMENTS = 65536;
const HIST_BYTES = 4 * TOPK_BINS * TOPK_HIST_COPIES; // a multiple of 256, so the state binding that follows is aligned
const META_WORDS = 8;
const WORD = { prefix: 0, above: 1, need: 2, bad: 3, threshold: 4, ties: 5 } as const;

/** Contiguous elements per segment: 32, or more when n > 32·65536 so there are at most 65536 segments. */
export function topkSegmentLength(n: number): number {
  return Math.max(32, Math.ceil(n / TOPK_MAX_SEGMENTS));
}

/** Segments for n elements. */
export function topkSegments(n: number): number {
  return Math.ceil(n / topkSegmentLength(n));
}

/** Workgroups of each histogram pass: one per 4096 elements, at most 256. */
export function topkHistParts(n: number): number {
  return Math.min(TOPK_MAX_PARTS, Math.ceil(n / 4096));
}

/** Bytes of the scratch buffer: the histogram copies, 8 state words, and 2 words per segment. */
export function topkScratchBytes(n: number): number {
  return HIST_BYTES + 4 * (META_WORDS + 2 * topkSegments(n));
}

/** Bytes of the kept list: k indices (u32), then k values (f32). */
export function topkKeptBytes(k: number): number {
  return 8 * k;
}

interface SelectBindings {
  /** The input (f32 values; read as their bits). */
  x: Binding;
  scratch: GPUBuffer;
  kept: Binding;
  /** Error feedback only: written by topk_compact_ef. */
  residual?: Binding;
}

function selectLaunches(device: GPUDevice, n: number, k: number, b: SelectBindings, opts: LaunchOptions): Launch[] {
  const who = b.residual ? 'topk_ef' : 'topk';
  requireDims(who, { n, k });
  if (k > n) throw new RangeError(`${who}: k must be in [1, n = ${n}], got ${k}`);
  requireBytes(`${who} x`, b.x, 4 * n);
  requireBytes(`${who} scratch`, b.scratch, topkScratchBytes(n));
  requireBytes(`${who} kept`, b.kept, topkKeptBytes(k));
  const segs = topkSegments(n);
  const segWorkgroups = Math.ceil(segs / 256);
  const parts = topkHistParts(n);
  const hist: GPUBufferBinding = { buffer: b.scratch, offset: 0, size: HIST_BYTES };
  const state: GPUBufferBinding = { buffer: b.scratch, offset: HIST_BYTES, size: topkScratchBytes(n) - HIST_BYTES };
  const uniform = (stage: number) => packUniform([n, k, stage, segs, parts, topkSegmentLength(n)]);
  const launches: Launch[] = [
    createLaunch(device, { shader: 'codec_topk', entry: 'topk_select', uniform: uniform(0), bindings: { 2: hist, 3: state }, workgroups: 1 }),
  ];
  for (let pass = 0; pass < 3; pass++) {
    launches.push(
      createLaunch(device, {
        shader: 'codec_topk',
        entry: 'topk_hist',
        uniform: uniform(pass),
        bindings: { 1: b.x, 2: hist, 3: state },
        workgroups: parts,
        ...opts,
      }),
      createLaunch(device, {
        shader: 'codec_topk',
        entry: 'topk_select',
        uniform: uniform(pass + 1),
        bindings: { 2: hist, 3: state },
        workgroups: 1,
      }),
    );
  }
  const compact: Record<number, Binding> = { 1: b.x, 3: state, 4: b.kept };
  if (b.residual) compact[5] = b.residual;
  launches.push(
    createLaunch(device, { shader: 'codec_topk', entry: 'topk_count', uniform: uniform(0), bindings: { 1: b.x, 3: state }, workgroups: segWorkgroups, ...opts }),
    createLaunch(device, { shader: 'codec_topk', entry: 'topk_scan', uniform: uniform(0), bindings: { 3: state }, workgroups: 1 }),
    createLaunch(device, {
      shader: 'codec_topk',
      entry: b.residual ? 'topk_compact_ef' : 'topk_compact',
      uniform: uniform(0),
      bindings: compact,
      workgroups: segWorkgroups,
      ...opts,
    }),
  );
  return launches;
}

/**
 * Launches (10 dispatches, run them in order in one pass) that write the top-k of x's n values to
 * `kept`: words [0, k) the indices in increasing order, [k, 2k) the values' f32 bits. `scratch` holds
 * topkScratchBytes(n) bytes (its contents on entry do not matter). k = codec.keep(n) for a top-k codec.
 */
export function topkLaunches(
  device: GPUDevice,
  n: number,
  k: number,
  b: { x: Binding; scratch: GPUBuffer; kept: Binding },
  opts: LaunchOptions = {},
): Launch[] {
  return selectLaunches(device, n, k, b, opts);
}

/** d = (base − local) + residual, each operation an IEEE f32 add rounded to nearest even (subnormals exact). */
export function topkPrepareLaunch(
  device: GPUDevice,
  n: number,
  b: { base: Binding; local: Binding; residual: Binding; d: Binding },
  opts: LaunchOptions = {},
): Launch {
  requireDims('topk_ef_prepare', { n });
  for (const key of ['base', 'local', 'residual', 'd'] as const) requireBytes(`topk_ef_prepare ${key}`, b[key], 4 * n);
  return createLaunch(device, {
    shader: 'codec_topk',
    entry: 'topk_ef_prepare',
    uniform: packUniform([n, 0, 0, 0, 0, 0]),
    bindings: { 5: b.residual, 6: b.base, 7: b.local, 8: b.d },
    workgroups: Math.ceil(n / 256),
    ...opts,
  });
}

/**
 * Top-k with error feedback, the GPU twin of `new ErrorFeedback(topkCodec(...), n).encode(base − local)`:
 * d = (base − local) + residual into `d` (n floats of scratch), the top-k of d into `kept`, and
 * residual ← d − decode(payload), i.e. 0 where kept and d where dropped (exact: kept values are sent as
 * f32). If d holds NaN or ±Inf the residual is left unchanged (and topkPayload throws).
 */
export function topkErrorFeedbackLaunches(
  device: GPUDevice,
  n: number,
  k: number,
  b: { base: Binding; local: Binding; residual: Binding; d: Binding; scratch: GPUBuffer; kept: Binding },
  opts: LaunchOptions = {},
): Launch[] {
  return [topkPrepareLaunch(device, n, b, opts), ...selectLaunches(device, n, k, { x: b.d, scratch: b.scratch, kept: b.kept, residual: b.residual }, opts)];
}

export interface TopkKept {
  /** Kept indices, increasing. */
  indices: Uint32Array;
  /** Their values. */
  values: Float32Array;
}

/** Reads the kept list (one readback of 8·k bytes). */
export async function readTopkKept(device: GPUDevice, kept: GPUBuffer, k: number): Promise<TopkKept> {
  const buf = await readBuffer(device, kept, topkKeptBytes(k));
  return { indices: new Uint32Array(buf, 0, k), values: new Float32Array(buf, 4 * k, k) };
}

export interface TopkState {
  /** Bits of the k-th largest |x|. */
  threshold: number;
  /** #{|x| > threshold}. */
  above: number;
  /** How many |x| = threshold are kept: k − above. */
  ties: number;
  /** Whether some value was NaN or ±Inf. */
  bad: boolean;
}

/** The selection state after a run (for tests and diagnostics; the payload does not need it). */
export async function readTopkState(device: GPUDevice, scratch: GPUBuffer): Promise<TopkState> {
  const w = new Uint32Array(await readBuffer(device, scratch, 4 * META_WORDS, HIST_BYTES));
  return { threshold: w[WORD.threshold], above: w[WORD.above], ties: w[WORD.ties], bad: w[WORD.bad] !== 0 };
}

/**
 * The CPU step: the payload of `codec` (a topkCodec) for n values from the GPU's kept list, via
 * topkPack, so it equals codec.encode(x) byte for byte. A NaN or ±Inf in x is always among the kept
 * values (its |x| bits are the largest), so it is refused here with a RangeError as the CPU encoder does.
 */
export function topkPayload(codec: SparseCodec, n: number, kept: TopkKept, ctx?: CodecContext): Uint8Array {
  if (!codec.name.startsWith('topk(')) throw new RangeError(`topkPayload needs a top-k codec, got ${codec.name}`);
  const k = codec.keep(n);
  if (kept.indices.length !== k || kept.values.length !== k) {
    throw new RangeError(`${codec.name} GPU payload: expected k = ${k} kept values for ${n} values, got ${kept.indices.length}`);
  }
  for (let j = 0; j < k; j++) {
    if (!Number.isFinite(kept.values[j])) {
      throw new RangeError(`${codec.name} encode: element ${kept.indices[j]} of ${n} is ${kept.values[j]}; only finite values can be encoded`);
    }
  }
  const values: Codec = codec.values;
  return topkPack(kept.indices, kept.values, n, values, ctx);
}
