// Random-k on the GPU (shaders/codec_quant.wgsl, entries randomk_indices and randomk_gather): the k
// indices π(0..k−1) of src/compress/randomk.ts's Feistel permutation (round keys drawn by Philox in the
// shader from the codec context), and the kept values x[π(j)] in draw order j, which is byte for byte
// randomkCodec({fraction}).encode(x, ctx) with the default f32 value codec. Any other value codec runs
// on the gathered k values: randomkQuantLaunches (blockwise quantization, e.g. CocktailSGD's q4) and
// randomkHalfLaunches (f16) give randomkCodec({fraction, values}).encode's bytes.
// One invocation per kept value; the grid folds to 2-D past the per-dimension workgroup limit.
import type { CodecContext } from '../../compress/codec';
import { checkContext } from '../../compress/prng';
import { feistelHalfBits } from '../../compress/randomk';
import type { BlockQuantOptions } from '../../compress/quantize';
import { createLaunch, requireBytes, requireDims, type Binding, type Launch, type LaunchOptions } from '../launch';
import { CODEC_SHADER, packCodecParams, quantizeBlockLaunches } from './codec-quant';
import { f32ToHalfLaunch } from './half';

const WG = 64;

function checkK(n: number, k: number, who: string): void {
  requireDims(who, { n, k });
  if (k > n) throw new RangeError(`${who}: k must be at most n = ${n}, got ${k}`);
}

function randomkParams(n: number, k: number, ctx: CodecContext): ArrayBuffer {
  return packCodecParams({ n, k, halfBits: feistelHalfBits(n), seed: ctx.seed, round: ctx.round, stream: ctx.stream });
}

/** indices[j] = π(j), j < k: randomkIndices(ctx, n, k). */
export function randomkIndicesLaunch(
  device: GPUDevice,
  n: number,
  k: number,
  ctx: CodecContext,
  b: { indices: Binding },
  opts: LaunchOptions = {},
): Launch {
  checkContext(ctx, 'randomk_indices', true);
  checkK(n, k, 'randomk_indices');
  requireBytes('randomk_indices indices', b.indices, 4 * k);
  return createLaunch(device, {
    shader: CODEC_SHADER,
    entry: 'randomk_indices',
    uniform: randomkParams(n, k, ctx),
    bindings: { 7: b.indices },
    workgroups: Math.ceil(k / WG),
    ...opts,
  });
}

/**
 * out[j] = x[π(j)], j < k (the bits, copied): randomkCodec({fraction}).encode(x, ctx) for
 * k = keepCount(fraction, n). `out` must not alias `x`. The CPU encoder refuses NaN/Inf anywhere in x;
 * this copies whatever it picks.
 */
export function randomkGatherLaunch(
  device: GPUDevice,
  n: number,
  k: number,
  ctx: CodecContext,
  b: { x: Binding; out: Binding },
  opts: LaunchOptions = {},
): Launch {
  checkContext(ctx, 'randomk_gather', true);
  checkK(n, k, 'randomk_gather');
  requireBytes('randomk_gather x', b.x, 4 * n);
  requireBytes('randomk_gather out', b.out, 4 * k);
  return createLaunch(device, {
    shader: CODEC_SHADER,
    entry: 'randomk_gather',
    uniform: randomkParams(n, k, ctx),
    bindings: { 1: b.x, 2: b.out },
    workgroups: Math.ceil(k / WG),
    ...opts,
  });
}

/**
 * Random-k then blockwise quantization of the k kept values (composeCodecs(randomkCodec({fraction}),
 * blockQuantCodec(o))): gathers into `kept` (k f32 of scratch), then quantizes them into `out`
 * (quantWords(k, o) words). Stochastic rounding draws for element j of the kept values, as the CPU does.
 */
export function randomkQuantLaunches(
  device: GPUDevice,
  n: number,
  k: number,
  o: BlockQuantOptions,
  ctx: CodecContext,
  b: { x: Binding; kept: Binding; out: Binding },
  opts: LaunchOptions = {},
): Launch[] {
  return [randomkGatherLaunch(device, n, k, ctx, { x: b.x, out: b.kept }, opts), ...quantizeBlockLaunches(device, k, o, ctx, { x: b.kept, out: b.out }, opts)];
}

/**
 * Random-k with the f16 value codec: gathers into `kept` (k f32), then f32_to_half into `out`
 * (ceil(k/2) words), randomkCodec({fraction, values: f16Codec}).encode's bytes for every input that
 * codec accepts (it refuses values that round past ±65504, which the cast saturates).
 */
export function randomkHalfLaunches(
  device: GPUDevice,
  n: number,
  k: number,
  ctx: CodecContext,
  b: { x: Binding; kept: Binding; out: Binding },
  opts: LaunchOptions = {},
): Launch[] {
  return [randomkGatherLaunch(device, n, k, ctx, { x: b.x, out: b.kept }, opts), f32ToHalfLaunch(device, k, { src: b.kept, dst: b.out }, opts)];
}
