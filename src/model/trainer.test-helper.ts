// A round's uplink for trainer tests: Δ encoded by the donor's GPU update encoder (src/sync), one
// encoder per trainer, built on first use, as the worker holds one per job.
import type { Trainer } from './model';
import { GpuUpdateEncoder } from '../sync/gpu-encoder';

const encoders = new WeakMap<Trainer, GpuUpdateEncoder>();

/** Encodes θ_base − θ_local (+ residual) with 4-bit values, as a job with codec 'q4' would. */
export async function encodeRound(device: GPUDevice, trainer: Trainer, round = 0): Promise<Uint8Array> {
  let enc = encoders.get(trainer);
  if (!enc) {
    const flatten = (e: GPUCommandEncoder) => trainer.recordFlattenLocal(e);
    enc = new GpuUpdateEncoder(device, 'q4', trainer.paramCount, 1, trainer.updateBuffers(), flatten);
    encoders.set(trainer, enc);
  }
  return enc.encode(1, round);
}
