// The donor's update encoded on the GPU: the bytes DonorSync.encodeUpdate would send for the same
// Δ = θ_v − θ_local and the same residual history, without reading the weights back. For the job
// codecs with GPU kernels: blockwise quantization (q8, q4, q2, with or without :sr), and top-k and
// chunked top-1 with any inner value codec (f32, f16, int8, qB[:sr]); gpuEncoderSupports says which.
// The residual lives in a GPU buffer (the trainer's), so DonorSync's own error feedback is not used
// for the uplink.
//
// One encode = one submit of:
//   ef_prepare (topk.wgsl)  d = (base − local) + β·residual into scratch, bit for bit
//                           ErrorFeedback's f32 d (β < 1: JavaScript's f64 product and sum,
//                           emulated exactly); records the first non-finite Δ and d in 2 flag words
//   qB:    quant_steps → quant_codes on d, then dequant_ef: residual ← d − decode (skipped when a
//          flag is set); the payload (4·⌈n/64⌉ + ⌈n·B/32⌉·4 bytes) and the flags come back
//   top-k: the selection on d and topk_compact_ef (residual ← +0 kept, d dropped; untouched when d
//          is not finite); the kept list (8·k bytes) and the flags come back; the host serialises it
//          with topkPack (topkPayload), as the CPU encoder does, and for a lossy inner value codec
//          writes the k corrections d − decode(value) over the kept values and scatters them into the
//          residual (topk_scatter, a second small submit that the next encode is queued behind)
//   chunktop: chunktop_select_ef (chunktop.wgsl) writes the same kept list (one per chunk) and
//          residual; the host packs it with chunkTopPack, and lossy values are scattered as for top-k
// then the model-codec header (version 1, one tensor, byte length, zero pad to 4) around the payload.
// The per-family steps are the families' encoder parts (GpuEncoderFamily, src/compress/encoder-part.gpu.ts),
// registered by codec kind in GPU_ENCODER_FAMILIES; this class holds what they share. It implements
// UpdateEncoder (update-encoder.ts), as CpuUpdateEncoder does for DonorSync's CPU path.
//
// A NaN or ±Inf in Δ throws DonorSync's RangeError naming the first such parameter (a non-finite d
// with a finite Δ throws the model codec's) and leaves the residual as it was, as on the CPU.
// Differences from the CPU: (1) for qB, where d or the new residual is subnormal and the element's
// code is not 0, a GPU may flush the residual to 0 (difference < 2^-126; codes and bytes are
// unaffected unless that residual later decides a rounding); (2) β must be 0 or in [2^-800, 1]
// (ErrorFeedback takes any β in [0, 1]).
import type { Codec } from '../compress/codec';
import { parseCodecSpec, type CodecSpec } from '../compress/codec-spec';
import type { GpuEncoderFamily, GpuEncoderPart } from '../compress/encoder-part.gpu';
import { MODEL_CODEC_VERSION, type ModelCodec } from '../compress/model-codec';
import { chunkTopEncoderPart } from '../compress/chunktop/chunktop.gpu';
import { quantEncoderPart, setLaunchContext } from '../compress/quant/quant.gpu';
import { decayBits, EF_FLAG_NONE, EF_FLAGS_BYTES, topkEncoderPart } from '../compress/topk/topk.gpu';
import { readBuffer } from '../gpu/buffers';
import { deviceLostError } from '../gpu/device';
import { encodeLaunches } from '../gpu/launch';
import { COPY_DST, MAP_MODE_READ, MAP_READ, STORAGE_RW } from '../gpu/usage';
import { checkPayloadSize } from './sync';
import { flatLayout, jobCodec, uplinkContext } from './job-codec';
import type { UpdateEncoder } from './update-encoder';

/** The codec families with a GPU encoder part, by codec kind; other kinds encode on the CPU. */
export const GPU_ENCODER_FAMILIES: Partial<Record<CodecSpec['kind'], GpuEncoderFamily>> = {
  quant: quantEncoderPart,
  topk: topkEncoderPart,
  chunktop: chunkTopEncoderPart,
};

/** Whether GpuUpdateEncoder handles this job codec (and decay, if given); false for unknown names. */
export function gpuEncoderSupports(codecName: string, errorDecay = 1): boolean {
  let kind: CodecSpec['kind'];
  try {
    kind = parseCodecSpec(codecName).kind;
    decayBits(errorDecay);
  } catch {
    return false;
  }
  return GPU_ENCODER_FAMILIES[kind] !== undefined;
}

/** The GPU buffers the encoder reads and updates (whole buffers of at least 4·n bytes). */
export interface UpdateBuffers {
  /** θ_v, the weights the round started from (f32, flat layout). */
  base: GPUBuffer;
  /** θ_local after training, in the flat layout (the trainer's padded buffer copied out). */
  local: GPUBuffer;
  /** The error-feedback residual; cleared by the constructor and by reset(). */
  residual: GPUBuffer;
}

const pad4 = (b: number) => 4 * Math.ceil(b / 4);

export class GpuUpdateEncoder implements UpdateEncoder {
  readonly where = 'gpu' as const;
  /** The job's model codec (flat layout), whose payload encode() returns. */
  readonly codec: ModelCodec;
  private readonly vector: Codec;
  private readonly owned: GPUBuffer[] = [];
  private readonly d: GPUBuffer;
  private readonly flags: GPUBuffer;
  private readonly staging: GPUBuffer;
  /** The codec family's launches and host step. */
  private readonly part: GpuEncoderPart;
  private busy = false;
  private destroyed = false;

  /**
   * `record`, if given, is what encode() records first when it is not given one (e.g. the copy of the
   * trainer's padded weights into the flat `local`).
   */
  constructor(
    private readonly device: GPUDevice,
    codecName: string,
    readonly n: number,
    readonly errorDecay: number,
    private readonly buffers: UpdateBuffers,
    private readonly record?: (enc: GPUCommandEncoder) => void,
  ) {
    if (!gpuEncoderSupports(codecName)) {
      const kinds = Object.keys(GPU_ENCODER_FAMILIES).join(', ');
      const name = JSON.stringify(codecName);
      throw new RangeError(`GPU update encoder: codec ${name} has no GPU encoder (codec kinds: ${kinds})`);
    }
    decayBits(errorDecay);
    if (!Number.isInteger(n) || n < 1)
      throw new RangeError(`GPU update encoder: n must be a positive integer, got ${n}`);
    const spec = parseCodecSpec(codecName);
    this.codec = jobCodec(codecName, flatLayout(n));
    this.vector = this.codec.codecs[0];
    const own = (bytes: number, label: string, usage = STORAGE_RW) => {
      const b = device.createBuffer({ size: Math.max(4, pad4(bytes)), usage, label: `update-encoder-${label}` });
      this.owned.push(b);
      return b;
    };
    this.d = own(4 * n, 'd');
    this.flags = own(EF_FLAGS_BYTES, 'flags');
    const { base, local, residual } = buffers;
    const prepare = { base, local, residual, d: this.d, flags: this.flags };
    const family = GPU_ENCODER_FAMILIES[spec.kind]!;
    this.part = family({ device, n, spec, vector: this.vector, errorDecay, prepare, own });
    this.staging = own(this.part.resultBytes + EF_FLAGS_BYTES, 'staging', MAP_READ | COPY_DST);
    this.reset();
  }

  /** Clears the residual (a fresh error feedback, as a new DonorSync starts with). */
  reset(): void {
    this.alive();
    const enc = this.device.createCommandEncoder({ label: 'update-encoder-reset' });
    enc.clearBuffer(this.buffers.residual, 0, 4 * this.n);
    this.device.queue.submit([enc.finish()]);
  }

  /**
   * The model-codec payload of the round's update (DonorSync.encodeUpdate's bytes for the same base,
   * local and residual history), updating the residual. `record`, if given, is called first with the
   * command encoder, so work that must precede the encode (e.g. copying the trainer's padded weights
   * to the flat `local`) goes into the same submit. Throws a RangeError naming the element when Δ or
   * d is not finite (residual unchanged). One encode at a time.
   */
  async encode(assignSeed: number, round: number, record = this.record): Promise<Uint8Array> {
    this.alive();
    if (this.busy) throw new Error('GPU update encoder: encode called while the previous one is still running');
    this.busy = true;
    try {
      // The model codec gives tensor i of T the stream ctx.stream·T + i: with one tensor, the uplink's own.
      const ctx = uplinkContext(assignSeed, round);
      const { device } = this;
      device.queue.writeBuffer(this.flags, 0, new Uint32Array([EF_FLAG_NONE, EF_FLAG_NONE]));
      const { part } = this;
      if (part.contextual.length) setLaunchContext(device, part.contextual, ctx);
      const enc = device.createCommandEncoder({ label: 'update-encoder' });
      record?.(enc);
      encodeLaunches(enc, part.launches);
      enc.copyBufferToBuffer(part.result, 0, this.staging, 0, part.resultBytes);
      enc.copyBufferToBuffer(this.flags, 0, this.staging, part.resultBytes, EF_FLAGS_BYTES);
      device.queue.submit([enc.finish()]);
      const raw = await this.readStaging();
      const [badDelta, badD] = new Uint32Array(raw, part.resultBytes, 2);
      if (badDelta !== EF_FLAG_NONE) {
        const [b, l] = await Promise.all([
          this.valueAt(this.buffers.base, badDelta),
          this.valueAt(this.buffers.local, badDelta),
        ]);
        throw new RangeError(
          `the update holds ${Math.fround(b - l)} at parameter ` +
            `${badDelta}: local training diverged; lower the learning rate`,
        );
      }
      if (badD !== EF_FLAG_NONE) {
        const v = await this.valueAt(this.d, badD);
        throw new RangeError(
          `model codec encode: tensor 0 (${this.codec.layout[0].name}) element ` +
            `${badD} (flat ${badD}) is ${v}; only finite values can be encoded`,
        );
      }
      const payload = part.payload(raw, ctx);
      const out = new Uint8Array(12 + pad4(payload.length));
      const dv = new DataView(out.buffer);
      dv.setUint32(0, MODEL_CODEC_VERSION, true);
      dv.setUint32(4, 1, true);
      dv.setUint32(8, payload.length, true);
      out.set(payload, 12);
      checkPayloadSize(this.codec, out.length, 'GPU update');
      return out;
    } finally {
      this.busy = false;
    }
  }

  private async readStaging(): Promise<ArrayBuffer> {
    try {
      await this.staging.mapAsync(MAP_MODE_READ);
    } catch (e) {
      throw (
        deviceLostError(this.device) ??
        new Error(`GPU update encoder: reading the result failed: ${(e as Error).message}`)
      );
    }
    const raw = this.staging.getMappedRange().slice(0);
    this.staging.unmap();
    return raw;
  }

  private async valueAt(buf: GPUBuffer, i: number): Promise<number> {
    return new Float32Array(await readBuffer(this.device, buf, 4, 4 * i))[0];
  }

  private alive(): void {
    if (this.destroyed) throw new Error('this GPU update encoder was destroyed');
  }

  /** Frees the encoder's own buffers and uniforms (not the caller's base, local and residual). */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const b of this.owned) b.destroy();
    this.part.destroy();
  }
}
