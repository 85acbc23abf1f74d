// Chunked top-1 selection on the GPU (src/compress/chunktop/chunktop.wgsl): the kept set of
// src/compress/chunktop/chunktop.ts (the largest |x| of every chunk, ties to the lower index), one invocation
// per chunk, written as the kept list topk.gpu.ts uses (m indices, then m values' bits), so
// topkScatterLaunch and readTopkKept apply and the host packs it with chunkTopPack, as the CPU
// encoder does.
import type { CodecContext } from '../codec';
import { chunkTopPack, checkChunk } from './chunktop';
import type { SparseCodec } from '../sparse';
import {
  createLaunch,
  packUniform,
  requireBytes,
  requireDims,
  type Binding,
  type Launch,
  type LaunchOptions,
} from '../../gpu/launch';
import { EF_FLAGS_BYTES, sparseEncoderPart, topkKeptBytes, topkPrepareLaunch, type TopkKept } from '../topk/topk.gpu';
import type { GpuEncoderFamily } from '../encoder-part.gpu';

const WG = 64;

/**
 * One dispatch writing the kept element of every chunk of x's n values to `kept` (topkKeptBytes(m)
 * bytes, m = ceil(n/chunk)). With `residual` and `flags` (ef_prepare's, topk.gpu.ts), also
 * residual ← +0 where kept and x where dropped, unless flags word 1 names a non-finite x.
 */
export function chunkTopLaunch(
  device: GPUDevice,
  n: number,
  chunk: number,
  b: { x: Binding; kept: Binding; residual?: Binding; flags?: Binding },
  opts: LaunchOptions = {},
): Launch {
  checkChunk(chunk, 'chunktop_select');
  requireDims('chunktop_select', { n });
  const m = Math.ceil(n / chunk);
  requireBytes('chunktop_select x', b.x, 4 * n);
  requireBytes('chunktop_select kept', b.kept, topkKeptBytes(m));
  if (!b.residual !== !b.flags)
    throw new RangeError('chunktop_select: residual and flags go together (error feedback) or not at all');
  const bindings: Record<number, Binding> = { 1: b.x, 2: b.kept };
  if (b.residual && b.flags) {
    requireBytes('chunktop_select residual', b.residual, 4 * n);
    requireBytes('chunktop_select flags', b.flags, EF_FLAGS_BYTES);
    bindings[3] = b.residual;
    bindings[4] = b.flags;
  }
  return createLaunch(device, {
    shader: 'chunktop',
    entry: b.residual ? 'chunktop_select_ef' : 'chunktop_select',
    uniform: packUniform([n, chunk, m, 0]),
    bindings,
    workgroups: Math.ceil(m / WG),
    ...opts,
  });
}

/**
 * The payload of `codec` (a chunkTopCodec) for n values from the GPU's kept list, via chunkTopPack, so
 * it equals codec.encode(x) byte for byte.
 */
export function chunkTopPayload(
  codec: SparseCodec,
  chunk: number,
  n: number,
  kept: TopkKept,
  ctx?: CodecContext,
): Uint8Array {
  if (!codec.name.startsWith(`chunktop(${chunk})`))
    throw new RangeError(`chunkTopPayload needs a chunktop(${chunk}) codec, got ${codec.name}`);
  for (let j = 0; j < kept.values.length; j++) {
    if (!Number.isFinite(kept.values[j])) {
      throw new RangeError(
        `${codec.name} encode: element ${kept.indices[j]} of ${n} ` +
          `is ${kept.values[j]}; only finite values can be encoded`,
      );
    }
  }
  return chunkTopPack(kept.indices, kept.values, n, chunk, codec.values, ctx);
}

/** The donor's GPU update encoder part for chunktop:C[/V]: ef_prepare, then chunktop_select_ef. */
export const chunkTopEncoderPart: GpuEncoderFamily = (input) => {
  const { device, n, spec, errorDecay, prepare } = input;
  if (spec.kind !== 'chunktop') {
    throw new RangeError(`chunkTopEncoderPart: a chunk top spec is needed, got ${spec.kind}`);
  }
  const chunk = spec.chunk;
  return sparseEncoderPart(
    input,
    (kept) => [
      topkPrepareLaunch(device, n, prepare, { decay: errorDecay }),
      chunkTopLaunch(device, n, chunk, { x: prepare.d, kept, residual: prepare.residual, flags: prepare.flags }),
    ],
    (codec, kept, ctx) => chunkTopPayload(codec, chunk, n, kept, ctx),
  );
};
