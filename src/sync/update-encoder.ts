// The donor's uplink encoder, one interface for both places it can run: CpuUpdateEncoder (DonorSync's
// ErrorFeedback over weights read back from the trainer) and GpuUpdateEncoder (gpu-encoder.ts: the
// codec families' GPU parts, no weights read back). For the same base, local weights, residual history
// and context both return the same bytes (gpu-encoder.test.ts compares them byte for byte).
import type { ModelCodec } from '../compress/model-codec';
import type { DonorSync } from './sync';

export interface UpdateEncoder {
  /** Where the encode runs (the donor reports it with each update). */
  readonly where: 'cpu' | 'gpu';
  /** The job's uplink model codec. */
  readonly codec: ModelCodec;
  /**
   * The model-codec payload of Δ = θ_v − θ_local plus the residual, for the assignment's seed and round,
   * updating the residual. Throws a RangeError naming the parameter when Δ is not finite (residual kept).
   */
  encode(assignSeed: number, round: number): Promise<Uint8Array> | Uint8Array;
  /** Clears the residual (a fresh error feedback). */
  reset(): void;
  /** Frees what the encoder holds (GPU buffers); a no-op on the CPU. */
  destroy(): void;
}

/** The CPU path: DonorSync.encodeUpdate on the weights `local()` returns (e.g. the trainer's, read back). */
export class CpuUpdateEncoder implements UpdateEncoder {
  readonly where = 'cpu' as const;

  constructor(
    private readonly sync: DonorSync,
    private readonly local: () => Float32Array | Promise<Float32Array>,
  ) {}

  get codec(): ModelCodec {
    return this.sync.upCodec;
  }

  async encode(assignSeed: number, round: number): Promise<Uint8Array> {
    return this.sync.encodeUpdate(await this.local(), assignSeed, round);
  }

  reset(): void {
    this.sync.resetUplink();
  }

  destroy(): void {}
}
