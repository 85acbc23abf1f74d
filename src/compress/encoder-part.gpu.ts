// One codec family's part of the donor's GPU update encoder (GpuUpdateEncoder, src/sync/gpu-encoder.ts).
// The encoder owns what every family shares (the flag words, the scratch d, the read-back, the
// model-codec header and the error checks); a family's part, built by the GpuEncoderFamily its
// <family>.gpu.ts exports, gives the launches of one encode and turns the bytes that come back into
// the vector codec's payload, byte for byte what the CPU codec would send. The encoder looks parts
// up by codec kind (GPU_ENCODER_FAMILIES in gpu-encoder.ts); a kind without one encodes on the CPU.
import type { Codec, CodecContext } from './codec';
import type { CodecSpec } from './codec-spec';
import type { Launch } from '../gpu/launch';

/** What a family's part is built from. */
export interface GpuEncoderInput {
  device: GPUDevice;
  /** Parameters (the flat layout's one tensor). */
  n: number;
  /** The job codec's parsed spec, of the family's kind. */
  spec: CodecSpec;
  /** The job's vector codec (the model codec's one tensor codec). */
  vector: Codec;
  /** Error-feedback decay β (checked by the encoder: 0 or in [2^-800, 1]). */
  errorDecay: number;
  /** The buffers of ef_prepare (topkPrepareLaunch): d ← (base − local) + β·residual, and the 2 flag words. */
  prepare: { base: GPUBuffer; local: GPUBuffer; residual: GPUBuffer; d: GPUBuffer; flags: GPUBuffer };
  /** A storage buffer of at least `bytes` that the encoder owns and frees. */
  own(bytes: number, label: string): GPUBuffer;
}

export interface GpuEncoderPart {
  /** One encode, in order: the prepare, the family's encode and its residual update. */
  readonly launches: Launch[];
  /** The launches whose uniform carries the codec context (rewritten every encode). */
  readonly contextual: Launch[];
  /** The buffer that comes back, and its bytes (a payload, or a kept list the host packs). */
  readonly result: GPUBuffer;
  readonly resultBytes: number;
  /**
   * The vector codec's payload from the result's bytes (the residual is already updated, or follow-up
   * GPU work is queued here before the next encode).
   */
  payload(result: ArrayBuffer, ctx: CodecContext): Uint8Array;
  /** Frees the part's launches (the buffers from `own` are the encoder's). */
  destroy(): void;
}

/** Builds a family's part; throws a RangeError when the spec is not the family's. */
export type GpuEncoderFamily = (input: GpuEncoderInput) => GpuEncoderPart;
