// GPU twins of the CPU codecs' encoders (src/compress/quant/quant.wgsl): blockwise 8/4/2-bit quantization
// with nearest or stochastic rounding, byte for byte blockQuantCodec's payload (src/compress/quant/quant.ts),
// its error-feedback variant (residual exactly the CPU ErrorFeedback's while no d is subnormal), and
// its decoder. The f16 value codec is half.ts's f32ToHalfLaunch
// (same layout and rounding as plain.ts's f16Codec for every value that codec accepts).
//
// A quantize is two launches recorded in one pass: quant_steps (one 64-wide workgroup per block writes
// the block's f32 step) then quant_codes (one invocation per u32 code word, reading the steps back from
// the payload). Both fold into a 2-D grid past the per-dimension workgroup limit.
import type { CodecContext } from '../codec';
import { checkContext } from '../prng';
import { quantLevels, type BlockQuantOptions, type QuantBits } from './quant';
import {
  createLaunch,
  destroyLaunch,
  requireBytes,
  requireDims,
  packUniform,
  type Binding,
  type Launch,
  type LaunchOptions,
} from '../../gpu/launch';
import { QUANT_BLOCK } from '../codec-spec';
import type { GpuEncoderFamily } from '../encoder-part.gpu';
import { topkPrepareLaunch } from '../topk/topk.gpu';

export const CODEC_SHADER = 'quant';
const WG = 64;

/** Uniform fields of quant.wgsl's Params, by name (all u32). */
export interface CodecParams {
  n?: number;
  blocks?: number;
  block?: number;
  bits?: number;
  levels?: number;
  invLevels?: number;
  stochastic?: number;
  words?: number;
  seed?: number;
  round?: number;
  stream?: number;
  purpose?: number;
  start?: number;
  /** Unused (the removed random-k entries' fields; the uniform's layout is kept). */
  k?: number;
  halfBits?: number;
}

const FIELDS: (keyof CodecParams)[] = [
  'n',
  'blocks',
  'block',
  'bits',
  'levels',
  'invLevels',
  'stochastic',
  'words',
  'seed',
  'round',
  'stream',
  'purpose',
  'start',
  'k',
  'halfBits',
];
/** Byte offset of ctx.seed, ctx.round, ctx.stream in the uniform (see setLaunchContext). */
const CTX_OFFSET = 4 * FIELDS.indexOf('seed');

export function packCodecParams(p: CodecParams): ArrayBuffer {
  return packUniform([...FIELDS.map((f) => p[f] ?? 0), 0]);
}

function ctxParams(ctx: CodecContext | undefined): CodecParams {
  return ctx ? { seed: ctx.seed, round: ctx.round, stream: ctx.stream } : {};
}

/**
 * Rewrites the codec context of launches built by this module (queue-ordered
 * before the next submit), so one set of launches serves every round.
 */
export function setLaunchContext(device: GPUDevice, launches: readonly Launch[], ctx: CodecContext): void {
  checkContext(ctx, 'setLaunchContext', true);
  for (const l of launches) {
    if (!l.uniform) throw new RangeError(`setLaunchContext: launch ${l.label} has no uniform`);
    device.queue.writeBuffer(l.uniform, CTX_OFFSET, new Uint32Array([ctx.seed, ctx.round, ctx.stream]));
  }
}

const f32 = new Float32Array(1);
const f32u = new Uint32Array(f32.buffer);
function f32BitsOf(v: number): number {
  f32[0] = v;
  return f32u[0];
}

function checkQuant(o: BlockQuantOptions, who: string): void {
  if (o.bits !== 2 && o.bits !== 4 && o.bits !== 8) {
    throw new RangeError(`${who}: bits must be 2, 4 or 8, got ${String(o.bits)}`);
  }
  if (!Number.isInteger(o.block) || o.block < 1 || o.block >= 2 ** 31)
    throw new RangeError(`${who}: block must be an integer in [1, 2^31), got ${o.block}`);
  if (o.rounding !== 'nearest' && o.rounding !== 'stochastic')
    throw new RangeError(`${who}: rounding must be 'nearest' or 'stochastic', got ${String(o.rounding)}`);
}

/** Steps for n values: ceil(n / block). */
export function quantBlocks(n: number, block: number): number {
  return Math.ceil(n / block);
}

/** Code words for n values: ceil(n·bits/32). */
export function quantCodeWords(n: number, bits: QuantBits): number {
  return Math.ceil((n * bits) / 32);
}

/** u32 words of the payload: blockQuantCodec(o).encodedBytes(n) / 4. */
export function quantWords(n: number, o: { bits: QuantBits; block: number }): number {
  return quantBlocks(n, o.block) + quantCodeWords(n, o.bits);
}

function quantParams(n: number, o: BlockQuantOptions, ctx: CodecContext | undefined): CodecParams {
  const L = quantLevels(o.bits);
  return {
    n,
    blocks: quantBlocks(n, o.block),
    block: o.block,
    bits: o.bits,
    levels: L,
    invLevels: f32BitsOf(1 / L),
    stochastic: o.rounding === 'stochastic' ? 1 : 0,
    words: quantCodeWords(n, o.bits),
    ...ctxParams(ctx),
  };
}

/**
 * Encodes x (n f32) into `out` (quantWords(n, o) u32 words): byte for byte blockQuantCodec(o).encode(x, ctx).
 * Stochastic rounding needs ctx (a RangeError otherwise, as on the CPU). A block holding NaN or ±Inf
 * gets NaN step bits (the CPU encoder throws instead): check the steps before sending. Returns
 * [quant_steps, quant_codes], to be run in this order (one runLaunches call records both in one pass).
 */
export function quantizeBlockLaunches(
  device: GPUDevice,
  n: number,
  o: BlockQuantOptions,
  ctx: CodecContext | undefined,
  b: { x: Binding; out: Binding },
  opts: LaunchOptions = {},
): Launch[] {
  checkQuant(o, 'quantizeBlock');
  checkContext(ctx, 'quantizeBlock', o.rounding === 'stochastic');
  requireDims('quantizeBlock', { n });
  requireBytes('quantizeBlock x', b.x, 4 * n);
  requireBytes('quantizeBlock out', b.out, 4 * quantWords(n, o));
  const uniform = packCodecParams(quantParams(n, o, ctx));
  return [
    createLaunch(device, {
      shader: CODEC_SHADER,
      entry: 'quant_steps',
      uniform,
      bindings: { 1: b.x, 2: b.out },
      workgroups: quantBlocks(n, o.block),
      ...opts,
    }),
    createLaunch(device, {
      shader: CODEC_SHADER,
      entry: 'quant_codes',
      uniform,
      bindings: { 1: b.x, 2: b.out },
      workgroups: Math.ceil(quantCodeWords(n, o.bits) / WG),
      ...opts,
    }),
  ];
}

/**
 * Error feedback (ErrorFeedback(blockQuantCodec(o), n).encode(delta, ctx)): encodes d = delta + residual
 * (f32 add) into `out` and sets residual ← d − decode(out). Bytes are blockQuantCodec's for that d;
 * the residual is the CPU's exactly unless d or the residual would be subnormal (|·| < 2^-126), where a
 * GPU may flush to 0 (difference < 2^-126 per element). In a block holding NaN or ±Inf the step is NaN
 * and the residual becomes 0 (the CPU throws and leaves it unchanged). Returns [quant_steps_ef,
 * quant_codes_ef].
 */
export function quantizeBlockErrorFeedbackLaunches(
  device: GPUDevice,
  n: number,
  o: BlockQuantOptions,
  ctx: CodecContext | undefined,
  b: { delta: Binding; residual: Binding; out: Binding },
  opts: LaunchOptions = {},
): Launch[] {
  checkQuant(o, 'quantizeBlockErrorFeedback');
  checkContext(ctx, 'quantizeBlockErrorFeedback', o.rounding === 'stochastic');
  requireDims('quantizeBlockErrorFeedback', { n });
  requireBytes('quantizeBlockErrorFeedback delta', b.delta, 4 * n);
  requireBytes('quantizeBlockErrorFeedback residual', b.residual, 4 * n);
  requireBytes('quantizeBlockErrorFeedback out', b.out, 4 * quantWords(n, o));
  const uniform = packCodecParams(quantParams(n, o, ctx));
  const bindings = { 2: b.out, 3: b.delta, 4: b.residual };
  return [
    createLaunch(device, {
      shader: CODEC_SHADER,
      entry: 'quant_steps_ef',
      uniform,
      bindings,
      workgroups: quantBlocks(n, o.block),
      ...opts,
    }),
    createLaunch(device, {
      shader: CODEC_SHADER,
      entry: 'quant_codes_ef',
      uniform,
      bindings,
      workgroups: Math.ceil(quantCodeWords(n, o.bits) / WG),
      ...opts,
    }),
  ];
}

/**
 * Decodes a payload (quantWords(n, o) words) into n f32: exactly blockQuantCodec(o).decode for every
 * payload an encoder produces. Where the CPU decoder throws (the code −2^(bits−1); a negative, Inf or
 * NaN step) the value is NaN; the unused bits of the last word are not checked. A subnormal step
 * (never encoded) may be flushed by a GPU.
 */
export function dequantizeBlockLaunch(
  device: GPUDevice,
  n: number,
  o: { bits: QuantBits; block: number },
  b: { payload: Binding; y: Binding },
  opts: LaunchOptions = {},
): Launch {
  checkQuant({ ...o, rounding: 'nearest' }, 'dequantizeBlock');
  requireDims('dequantizeBlock', { n });
  requireBytes('dequantizeBlock payload', b.payload, 4 * quantWords(n, o));
  requireBytes('dequantizeBlock y', b.y, 4 * n);
  return createLaunch(device, {
    shader: CODEC_SHADER,
    entry: 'dequant',
    uniform: packCodecParams(quantParams(n, { ...o, rounding: 'nearest' }, undefined)),
    bindings: { 5: b.payload, 6: b.y },
    workgroups: Math.ceil(quantCodeWords(n, o.bits) / WG),
    ...opts,
  });
}

/**
 * The error-feedback residual of a payload encoded from d: residual ← d − decode(payload), as
 * ErrorFeedback(blockQuantCodec(o)) stores it — bit for bit where the code is 0 (d's bits copied),
 * else one f32 multiply and subtract (exact unless d or the result is subnormal, where a GPU may
 * flush). `flags` is the error-feedback prepare's (topk.gpu.ts topkPrepareLaunch): when its word 1
 * names a non-finite d, the residual is left unchanged. One invocation per code word.
 */
export function dequantizeResidualLaunch(
  device: GPUDevice,
  n: number,
  o: { bits: QuantBits; block: number },
  b: { payload: Binding; d: Binding; residual: Binding; flags: Binding },
  opts: LaunchOptions = {},
): Launch {
  checkQuant({ ...o, rounding: 'nearest' }, 'dequantizeResidual');
  requireDims('dequantizeResidual', { n });
  requireBytes('dequantizeResidual payload', b.payload, 4 * quantWords(n, o));
  requireBytes('dequantizeResidual d', b.d, 4 * n);
  requireBytes('dequantizeResidual residual', b.residual, 4 * n);
  requireBytes('dequantizeResidual flags', b.flags, 8);
  return createLaunch(device, {
    shader: CODEC_SHADER,
    entry: 'dequant_ef',
    uniform: packCodecParams(quantParams(n, { ...o, rounding: 'nearest' }, undefined)),
    bindings: { 1: b.d, 5: b.payload, 6: b.residual, 8: b.flags },
    workgroups: Math.ceil(quantCodeWords(n, o.bits) / WG),
    ...opts,
  });
}

// ---- test probes -------------------------------------------------------------------------------------

/** A probe entry: `count` cases of caseWords u32 each → outWords u32 each, one invocation per case. */
function probeLaunch(
  device: GPUDevice,
  entry: string,
  count: number,
  caseWords: number,
  outWords: number,
  b: { cases: Binding; out: Binding },
): Launch {
  requireDims(entry, { count });
  requireBytes(`${entry} cases`, b.cases, 4 * caseWords * count);
  requireBytes(`${entry} out`, b.out, 4 * outWords * count);
  return createLaunch(device, {
    shader: CODEC_SHADER,
    entry,
    uniform: packCodecParams({ n: count }),
    bindings: { 1: b.cases, 2: b.out },
    workgroups: Math.ceil(count / WG),
  });
}

/** cases (6 u32 each: c0..c3, k0, k1) → out (4 u32 each): Philox4x32-10. */
export function probePhiloxLaunch(device: GPUDevice, count: number, b: { cases: Binding; out: Binding }): Launch {
  return probeLaunch(device, 'probe_philox', count, 6, 4, b);
}

/** out[j] = randomU32(ctx, purpose, start + j) for j < count (start + count <= 2^32). */
export function probeRandomU32Launch(
  device: GPUDevice,
  ctx: CodecContext,
  purpose: number,
  start: number,
  count: number,
  b: { out: Binding },
): Launch {
  checkContext(ctx, 'probe_random_u32', true);
  requireDims('probe_random_u32', { count });
  if (start + count > 2 ** 32) throw new RangeError(`probe_random_u32: start + count must be <= 2^32`);
  requireBytes('probe_random_u32 out', b.out, 4 * count);
  return createLaunch(device, {
    shader: CODEC_SHADER,
    entry: 'probe_random_u32',
    uniform: packCodecParams({ n: count, purpose, start, ...ctxParams(ctx) }),
    bindings: { 2: b.out },
    workgroups: Math.ceil(count / WG),
  });
}

/**
 * cases (4 u32 each: x bits, step bits (a positive normal f32), u, L) → out (4 u32 each: bits of
 * f32(|x|/step) or 0, its kind (0 zero, 1 below 2^-24 but not 0, 2 normal, 3 >= 256), nearest code,
 * stochastic code; codes as i32 bits).
 */
export function probeQuantLaunch(device: GPUDevice, count: number, b: { cases: Binding; out: Binding }): Launch {
  return probeLaunch(device, 'probe_quant', count, 4, 4, b);
}

/**
 * The donor's GPU update encoder part for qB[:sr] (GpuUpdateEncoder): ef_prepare's d, quant_steps →
 * quant_codes on d (the payload comes back as is), then dequant_ef: residual ← d − decode (skipped
 * when a flag is set).
 */
export const quantEncoderPart: GpuEncoderFamily = (input) => {
  const { device, n, spec, errorDecay, prepare } = input;
  if (spec.kind !== 'quant') throw new RangeError(`quantEncoderPart: a quantization spec is needed, got ${spec.kind}`);
  const o = { bits: spec.bits, block: QUANT_BLOCK, rounding: spec.rounding };
  const resultBytes = 4 * quantWords(n, o);
  const result = input.own(resultBytes, 'payload');
  const ctx0 = { seed: 0, round: 0, stream: 0 };
  const contextual = quantizeBlockLaunches(device, n, o, ctx0, { x: prepare.d, out: result });
  const residualBindings = { payload: result, d: prepare.d, residual: prepare.residual, flags: prepare.flags };
  const launches = [
    topkPrepareLaunch(device, n, prepare, { decay: errorDecay }),
    ...contextual,
    dequantizeResidualLaunch(device, n, { bits: spec.bits, block: QUANT_BLOCK }, residualBindings),
  ];
  return {
    launches,
    contextual,
    result,
    resultBytes,
    payload: (raw) => new Uint8Array(raw, 0, resultBytes),
    destroy: () => launches.forEach(destroyLaunch),
  };
};
