// The codec a job sends its updates with, and the counter-based contexts that make every random
// choice reproducible by both ends. Element-wise codecs (quantization, top-k, random-k, CocktailSGD,
// f16) see the whole flat parameter vector as one tensor: one global top-k/random-k choice and
// blocks that do not restart at tensor edges, which is also the layout the GPU encoders work on.
// PowerSGD needs the shapes, so it goes tensor by tensor (2-D tensors low-rank, the rest through
// its fallback codec).
import { buildModelCodec, parseCodecSpec } from '../compress/codec-spec';
import type { CodecContext } from '../compress/codec';
import type { ModelCodec, TensorSpec } from '../compress/model-codec';

/** Stream ids of the two directions (the model codec spreads tensors over stream·T + i). */
export const UPLINK_STREAM = 0;
export const DOWNLINK_STREAM = 1;

/** The whole parameter vector as one tensor. */
export function flatLayout(n: number): TensorSpec[] {
  return [{ name: 'params', shape: [n], offset: 0, size: n }];
}

/** A fresh (stateful for PowerSGD) model codec for a job's codec name over its parameter layout. */
export function jobCodec(name: string, layout: readonly TensorSpec[]): ModelCodec {
  const spec = parseCodecSpec(name);
  const n = layout.reduce((a, t) => a + t.size, 0);
  return buildModelCodec(spec, spec.kind === 'powersgd' ? layout : flatLayout(n));
}

/** Context of a donor's update for a round: its assignment's seed (unique per donor and round). */
export function uplinkContext(assignSeed: number, round: number): CodecContext {
  return { seed: assignSeed >>> 0, round, stream: UPLINK_STREAM };
}

/** Context of the broadcast step that makes version `version`: the job's seed. */
export function downlinkContext(jobSeed: number, version: number): CodecContext {
  return { seed: jobSeed >>> 0, round: version, stream: DOWNLINK_STREAM };
}
