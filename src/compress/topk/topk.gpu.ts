// Top-k selection on the GPU (src/compress/topk/topk.wgsl): the same kept set as src/compress/topk/topk.ts
// (k largest |x|, ties to the lower index), found by three histogram passes and a deterministic
// compaction, with no CPU round trip in between. The GPU writes the kept (index, value) list (8·k
// bytes, instead of the 4·n of the whole update); the host reads it back and topkPayload serialises it
// with topk.ts's topkPack, the function the CPU encoder itself ends in, so the bytes are the CPU's.
import type { Codec, CodecContext } from '../codec';
import type { SparseCodec } from '../sparse';
import { topkPack } from './topk';
import { readBuffer } from '../../gpu/buffers';
import {
  createLaunch,
  destroyLaunch,
  encodeLaunches,
  requireBytes,
  requireDims,
  packUniform,
  type Binding,
  type Launch,
  type LaunchOptions,
} from '../../gpu/launch';
import type { GpuEncoderInput, GpuEncoderPart, GpuEncoderFamily } from '../encoder-part.gpu';

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

/** Smallest nonzero error-feedback decay the GPU prepare accepts (β·r and d + β·r stay normal f64). */
export const GPU_MIN_DECAY = 2 ** -800;

/** The f64 bits [high word, low word] of an error-feedback decay β ∈ {0} ∪ [2^-800, 1]; a RangeError otherwise. */
export function decayBits(decay: number): [number, number] {
  if (!(decay === 0 || (decay >= GPU_MIN_DECAY && decay <= 1))) {
    throw new RangeError(`error-feedback decay must be 0 or in [2^-800, 1] on the GPU, got ${decay}`);
  }
  const w = new Uint32Array(new Float64Array([decay]).buffer);
  return [w[1], w[0]];
}

/** The Dims uniform of topk.wgsl: six u32 fields, then the decay's f64 bits (β = 1 unless given). */
function packDims(fields: readonly number[], decay = 1): ArrayBuffer {
  return packUniform([...fields, ...decayBits(decay)]);
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
  const uniform = (stage: number) => packDims([n, k, stage, segs, parts, topkSegmentLength(n)]);
  const launches: Launch[] = [
    createLaunch(device, {
      shader: 'topk',
      entry: 'topk_select',
      uniform: uniform(0),
      bindings: { 2: hist, 3: state },
      workgroups: 1,
    }),
  ];
  for (let pass = 0; pass < 3; pass++) {
    launches.push(
      createLaunch(device, {
        shader: 'topk',
        entry: 'topk_hist',
        uniform: uniform(pass),
        bindings: { 1: b.x, 2: hist, 3: state },
        workgroups: parts,
        ...opts,
      }),
      createLaunch(device, {
        shader: 'topk',
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
    createLaunch(device, {
      shader: 'topk',
      entry: 'topk_count',
      uniform: uniform(0),
      bindings: { 1: b.x, 3: state },
      workgroups: segWorkgroups,
      ...opts,
    }),
    createLaunch(device, {
      shader: 'topk',
      entry: 'topk_scan',
      uniform: uniform(0),
      bindings: { 3: state },
      workgroups: 1,
    }),
    createLaunch(device, {
      shader: 'topk',
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

/** Options of the error-feedback prepare: the decay β of d = (base − local) + β·residual (default 1). */
export interface PrepareOptions extends LaunchOptions {
  decay?: number;
}

/** Bytes of the prepare's flag words (`flags` binding): the first non-finite base − local, the first non-finite d. */
export const EF_FLAGS_BYTES = 8;
/** A flag word's value when no element was non-finite (write it to both words before each launch). */
export const EF_FLAG_NONE = 0xffffffff;

/**
 * d = (base − local) + β·residual, bit for bit what ErrorFeedback stores for its Float32Array d: for
 * β = 1 two IEEE f32 adds (round to nearest even, subnormals exact); for other β (0 or in [2^-800, 1))
 * JavaScript's f64 product and sum, then f32 rounding, emulated exactly on integer significands. With
 * `flags` (EF_FLAGS_BYTES, both words EF_FLAG_NONE before the launch) it also atomically records the
 * first i whose base − local is NaN or ±Inf (word 0) and the first i whose d is (word 1).
 */
export function topkPrepareLaunch(
  device: GPUDevice,
  n: number,
  b: { base: Binding; local: Binding; residual: Binding; d: Binding; flags?: Binding },
  opts: PrepareOptions = {},
): Launch {
  requireDims('topk_ef_prepare', { n });
  for (const key of ['base', 'local', 'residual', 'd'] as const) requireBytes(`topk_ef_prepare ${key}`, b[key], 4 * n);
  const bindings: Record<number, Binding> = { 5: b.residual, 6: b.base, 7: b.local, 8: b.d };
  if (b.flags) {
    requireBytes('ef_prepare flags', b.flags, EF_FLAGS_BYTES);
    bindings[9] = b.flags;
  }
  const decay = opts.decay ?? 1;
  return createLaunch(device, {
    shader: 'topk',
    entry: b.flags ? 'ef_prepare' : 'topk_ef_prepare',
    constants: { EF_DECAY: decay === 1 ? 0 : 1 },
    uniform: packDims([n, 0, 0, 0, 0, 0], decay),
    bindings,
    workgroups: Math.ceil(n / 256),
    maxWorkgroupsPerDim: opts.maxWorkgroupsPerDim,
  });
}

/**
 * Top-k with error feedback, the GPU twin of `new ErrorFeedback(topkCodec(...), n, decay).encode(base − local)`:
 * d = (base − local) + β·residual into `d` (n floats of scratch; topkPrepareLaunch, `flags` optional),
 * the top-k of d into `kept`, and residual ← d − decode(payload) for f32 kept values, i.e. +0 where kept
 * and d where dropped (for another inner value codec, follow with topkScatterLaunch). If d holds NaN or
 * ±Inf the residual is left unchanged (and topkPayload throws).
 */
export function topkErrorFeedbackLaunches(
  device: GPUDevice,
  n: number,
  k: number,
  b: {
    base: Binding;
    local: Binding;
    residual: Binding;
    d: Binding;
    scratch: GPUBuffer;
    kept: Binding;
    flags?: Binding;
  },
  opts: PrepareOptions = {},
): Launch[] {
  const select = selectLaunches(
    device,
    n,
    k,
    { x: b.d, scratch: b.scratch, kept: b.kept, residual: b.residual },
    { maxWorkgroupsPerDim: opts.maxWorkgroupsPerDim },
  );
  return [topkPrepareLaunch(device, n, b, opts), ...select];
}

/**
 * residual[kept[j]] ← the f32 bits in kept word k + j, for j < k: after the host has overwritten the
 * kept values (words [k, 2k)) with d − decode(value), the residual of a top-k whose inner value codec
 * is lossy. k dispatches' worth of work; the rest of the residual is untouched.
 */
export function topkScatterLaunch(
  device: GPUDevice,
  n: number,
  k: number,
  b: { kept: Binding; residual: Binding },
  opts: LaunchOptions = {},
): Launch {
  requireDims('topk_scatter', { n, k });
  if (k > n) throw new RangeError(`topk_scatter: k must be in [1, n = ${n}], got ${k}`);
  requireBytes('topk_scatter kept', b.kept, topkKeptBytes(k));
  requireBytes('topk_scatter residual', b.residual, 4 * n);
  return createLaunch(device, {
    shader: 'topk',
    entry: 'topk_scatter',
    uniform: packDims([n, k, 0, 0, 0, 0]),
    bindings: { 4: b.kept, 5: b.residual },
    workgroups: Math.ceil(k / 256),
    ...opts,
  });
}

/**
 * Test probe: cases (4 u32 each: d bits, r bits, β's f64 high word, low word) → out (u32 each): fround(d + β·r) as
 * JS computes it.
 */
export function probeEfMulAddLaunch(device: GPUDevice, count: number, b: { cases: Binding; out: Binding }): Launch {
  requireDims('probe_ef_mul_add', { count });
  requireBytes('probe_ef_mul_add cases', b.cases, 16 * count);
  requireBytes('probe_ef_mul_add out', b.out, 4 * count);
  return createLaunch(device, {
    shader: 'topk',
    entry: 'probe_ef_mul_add',
    uniform: packDims([count, 0, 0, 0, 0, 0]),
    bindings: { 1: b.cases, 8: b.out },
    workgroups: Math.ceil(count / 256),
  });
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
    throw new RangeError(
      `${codec.name} GPU payload: expected k = ${k} kept values for ${n} values, got ${kept.indices.length}`,
    );
  }
  for (let j = 0; j < k; j++) {
    if (!Number.isFinite(kept.values[j])) {
      throw new RangeError(
        `${codec.name} encode: element ${kept.indices[j]} of ${n} ` +
          `is ${kept.values[j]}; only finite values can be encoded`,
      );
    }
  }
  const values: Codec = codec.values;
  return topkPack(kept.indices, kept.values, n, values, ctx);
}

/**
 * A sparse family's encoder part around its kept list (top-k, chunk top): the launches (prepare and
 * selection, which write the kept list and residual ← +0 kept, d dropped) come from `select`; the host
 * packs the kept list with `pack`, and for a lossy inner value codec writes the k corrections
 * d − decode(value) over the kept values and scatters them into the residual (topk_scatter, a second
 * small submit that the next encode is queued behind), as ErrorFeedback stores them.
 */
export function sparseEncoderPart(
  input: GpuEncoderInput,
  select: (kept: GPUBuffer) => Launch[],
  pack: (codec: SparseCodec, kept: TopkKept, ctx: CodecContext) => Uint8Array,
): GpuEncoderPart {
  const { device, n, spec, prepare } = input;
  const vector = input.vector as SparseCodec;
  const k = vector.keep(n);
  const resultBytes = topkKeptBytes(k);
  const result = input.own(resultBytes, 'kept');
  const launches = select(result);
  const lossy = (spec.kind === 'topk' || spec.kind === 'chunktop') && spec.values.kind !== 'f32';
  const scatter = lossy ? topkScatterLaunch(device, n, k, { kept: result, residual: prepare.residual }) : null;
  return {
    launches,
    contextual: [],
    result,
    resultBytes,
    payload(raw, ctx) {
      const kept = { indices: new Uint32Array(raw, 0, k), values: new Float32Array(raw, 4 * k, k) };
      const part = pack(vector, kept, ctx);
      if (scatter) {
        // The values' payload is the fixed-size tail; residual ← d − decode there.
        const values = vector.values;
        const sent = values.decode(part.subarray(part.length - values.encodedBytes(k)), k, ctx);
        const corrections = new Float32Array(k);
        for (let j = 0; j < k; j++) corrections[j] = kept.values[j] - sent[j];
        device.queue.writeBuffer(result, 4 * k, corrections);
        const enc = device.createCommandEncoder({ label: 'update-encoder-scatter' });
        encodeLaunches(enc, [scatter]);
        device.queue.submit([enc.finish()]);
      }
      return part;
    },
    destroy() {
      launches.forEach(destroyLaunch);
      if (scatter) destroyLaunch(scatter);
    },
  };
}

/** The donor's GPU update encoder part for topk:F[/V]: ef_prepare, the selection and topk_compact_ef. */
export const topkEncoderPart: GpuEncoderFamily = (input) => {
  if (input.spec.kind !== 'topk') {
    throw new RangeError(`topkEncoderPart: a top-k spec is needed, got ${input.spec.kind}`);
  }
  const { device, n, errorDecay, prepare } = input;
  const k = (input.vector as SparseCodec).keep(n);
  const scratch = input.own(topkScratchBytes(n), 'topk-scratch');
  return sparseEncoderPart(
    input,
    (kept) => topkErrorFeedbackLaunches(device, n, k, { ...prepare, scratch, kept }, { decay: errorDecay }),
    (codec, kept, ctx) => topkPayload(codec, n, kept, ctx),
  );
};
