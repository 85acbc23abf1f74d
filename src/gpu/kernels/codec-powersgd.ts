// PowerSGD on the GPU (shaders/codec_powersgd.wgsl): the encoder of src/compress/powersgd.ts for one
// 2-D tensor M [rows, cols] at rank r <= 8, in f32, writing a payload the CPU
// powerSgdCodec(rows, cols, r).decode accepts (P~ [rows, r] then Q' [cols, r], 4·r·(rows + cols) bytes).
// Ported as that file describes: e = floor(log2 max|M|) from the exponent bits, the degenerate-column
// threshold tau = 2^-12 (GPU_POWERSGD_TAU), classical Gram–Schmidt twice per column with the same
// least-covered-coordinate replacement, the warm start Q kept in a GPU buffer between encodes, and the
// initial Q drawn with powerSgdUniform's hash, rounded to f32 exactly (so the first round starts from
// Math.fround of the CPU's Q). The payload is not byte-equal to the CPU's (f32 against float64 sums);
// docs/KERNELS.md ("PowerSGD on the GPU") gives the bounds the tests hold it to.
//
// powerSgdEncodeLaunches builds the eight dispatches of one encode over caller-owned buffers;
// GpuPowerSgd owns those buffers for one tensor and is what a caller normally uses:
//   const enc = new GpuPowerSgd(device, rows, cols, r);
//   enc.start(ctx);                               // or pass ctx to the first encode
//   const payload = enc.encode(gradBuffer, byteOffset);   // submitted; read back with enc.read()
import type { CodecContext } from '../../compress/codec';
import { powerSgdBytes } from '../../compress/powersgd';
import { createStorage, createUniform, readBuffer } from '../buffers';
import { createLaunch, encodeLaunches, packUniform, requireBytes, requireDims, type Binding, type Launch, type LaunchOptions } from '../launch';

export const POWERSGD_SHADER = 'codec_powersgd';
/** Relative norm below which the f32 port replaces an orthogonalised column (the CPU uses 2^-30). */
export const GPU_POWERSGD_TAU = 2 ** -12;
/** Largest rank the shader supports (its per-invocation accumulators). */
export const GPU_POWERSGD_MAX_RANK = 8;

const WG = 64;
const CHUNK = 32; // elements per psgd_max invocation
/** Bytes of the shader's State struct, rounded up. */
export const POWERSGD_STATE_BYTES = 48;

/** State word indices (u32) of the shader's State struct. */
const S = { status: 1, e: 2, draw: 3, qValid: 4, qRef: 5, normF: 6, replacedQ: 7, replacedP: 8 } as const;

/** What the last encode found (GpuPowerSgd.readState; for tests and diagnostics). */
export interface GpuPowerSgdState {
  /** 'ok', 'tiny' (max|M| < 2^-126: all-zero payload) or 'bad' (NaN/±Inf in M: all-NaN payload). */
  status: 'ok' | 'tiny' | 'bad';
  /** floor(log2 max|M|) (meaningful when ok). */
  e: number;
  /** A warm start is held (false after construction or reset until an ok encode or start). */
  started: boolean;
  /** ‖Â‖_F of the round that produced the warm start (0 right after a draw). */
  qRef: number;
  /** ‖Â‖_F of the last ok encode. */
  normF: number;
  /** Bit k: column k of Q̂, resp. P̃, was replaced by a fresh direction in the last encode (0 unless it was ok). */
  replacedQ: number;
  replacedP: number;
}

function checkShape(rows: number, cols: number, rank: number, who: string): void {
  requireDims(who, { rows, cols, n: rows * cols });
  const m = Math.min(rows, cols, GPU_POWERSGD_MAX_RANK);
  if (!Number.isInteger(rank) || rank < 1 || rank > m) {
    throw new RangeError(
      `${who}: rank must be an integer in [1, ${m}] (min of ${rows} × ${cols} and ${GPU_POWERSGD_MAX_RANK}), got ${rank}`,
    );
  }
}

/** ctx field as powersgd.ts's word(): (low, high) 32-bit words of a safe integer. */
function ctxWords(ctx: CodecContext): number[] {
  return (['seed', 'stream', 'round'] as const).flatMap((f) => {
    const v = ctx[f];
    if (!Number.isSafeInteger(v)) throw new RangeError(`GpuPowerSgd: ctx.${f} must be a safe integer, got ${v}`);
    return [v >>> 0, Math.floor(v / 4294967296) >>> 0];
  });
}

/** The shader's Params: shape, the element offset of M in its bound range, and the ctx words. */
export function packPowerSgdParams(rows: number, cols: number, rank: number, offsetElements: number, ctx?: CodecContext): ArrayBuffer {
  return packUniform([rows, cols, rank, rows * cols, offsetElements, ...(ctx ? ctxWords(ctx) : [0, 0, 0, 0, 0, 0]), 0]);
}
/** Byte offset of Params.off, then of the six ctx words. */
const OFF_OFFSET = 16;
const CTX_OFFSET = 20;

export interface PowerSgdBindings {
  /** The shared uniform (packPowerSgdParams). */
  params: GPUBuffer;
  /** M: rows·cols f32 from element `off` of this range. */
  input: Binding;
  /** Warm start Q [cols, r] f32. */
  q: Binding;
  /** Payload, powerSgdBytes(rows, cols, r) bytes. */
  payload: Binding;
  /** POWERSGD_STATE_BYTES, zero-initialised (a zero q_valid: the first ok encode draws). */
  state: Binding;
  /** rows f32 of scratch. */
  rowss: Binding;
}

/** psgd_draw alone: Q <- the draw of the ctx in `params` when the state's draw flag is set. */
export function powerSgdDrawLaunch(
  device: GPUDevice,
  cols: number,
  rank: number,
  b: Pick<PowerSgdBindings, 'params' | 'q' | 'state'>,
  opts: LaunchOptions = {},
): Launch {
  return createLaunch(device, {
    shader: POWERSGD_SHADER,
    entry: 'psgd_draw',
    bindings: { 0: b.params, 3: b.q, 5: b.state },
    workgroups: Math.ceil((cols * rank) / WG),
    ...opts,
  });
}

/**
 * One encode as eight launches for one compute pass (see the shader's header): begin, max, setup,
 * draw, orth_q, mq, orth_p, mtp. `params` must hold packPowerSgdParams(rows, cols, rank, off, ctx)
 * with the input's element offset; the ctx is read only when Q is drawn.
 */
export function powerSgdEncodeLaunches(
  device: GPUDevice,
  rows: number,
  cols: number,
  rank: number,
  b: PowerSgdBindings,
  offsetElements = 0,
  opts: LaunchOptions = {},
): Launch[] {
  const who = 'powerSgdEncode';
  checkShape(rows, cols, rank, who);
  requireBytes(`${who} input`, b.input, 4 * (offsetElements + rows * cols));
  requireBytes(`${who} q`, b.q, 4 * cols * rank);
  requireBytes(`${who} payload`, b.payload, powerSgdBytes(rows, cols, rank));
  requireBytes(`${who} state`, b.state, POWERSGD_STATE_BYTES);
  requireBytes(`${who} rowss`, b.rowss, 4 * rows);
  const one = (entry: string, bindings: Record<number, Binding>, workgroups: number): Launch =>
    createLaunch(device, { shader: POWERSGD_SHADER, entry, bindings, workgroups, ...opts });
  const p = b.params;
  return [
    one('psgd_begin', { 5: b.state }, 1),
    one('psgd_max', { 0: p, 1: b.input, 5: b.state }, Math.ceil((rows * cols) / CHUNK / WG)),
    one('psgd_setup', { 5: b.state }, 1),
    powerSgdDrawLaunch(device, cols, rank, b, opts),
    one('psgd_orth_q', { 0: p, 2: b.q, 5: b.state }, 1),
    one('psgd_mq', { 0: p, 1: b.input, 3: b.q, 4: b.payload, 5: b.state, 6: b.rowss }, Math.ceil(rows / WG)),
    one('psgd_orth_p', { 0: p, 2: b.payload, 5: b.state, 6: b.rowss }, 1),
    one('psgd_mtp', { 0: p, 1: b.input, 3: b.q, 4: b.payload, 5: b.state }, Math.ceil(Math.max(rows, cols) / WG)),
  ];
}

/**
 * The GPU PowerSGD encoder of one [rows, cols] tensor: owns the warm start, the state, the scratch
 * and the payload buffer (`payload`, exactly powerSgdBytes(rows, cols, rank) bytes), and rebuilds its
 * bind groups only when the input buffer or its 256-byte-aligned window changes.
 *
 * Differences from powerSgdCodec (see docs/KERNELS.md): f32 sums and tau = 2^-12, so decodes agree
 * to ~1e-7 relative, not bit for bit; a NaN/±Inf input gives an all-NaN payload (the CPU decoder
 * refuses it) instead of a throw; and because the host cannot see a tiny input without a readback,
 * `started` turns true at the first encode given a ctx even when that input was tiny (the GPU then
 * draws at the next ok encode, from the last ctx given; the CPU would need that encode's ctx).
 */
export class GpuPowerSgd {
  readonly payload: GPUBuffer;
  readonly bytes: number;
  private readonly q: GPUBuffer;
  private readonly state: GPUBuffer;
  private readonly rowss: GPUBuffer;
  private readonly params: GPUBuffer;
  private readonly draw: Launch;
  private bound?: { input: GPUBuffer; base: number; size: number; launches: Launch[] };
  private off = 0;
  private hostStarted = false;

  constructor(
    readonly device: GPUDevice,
    readonly rows: number,
    readonly cols: number,
    readonly rank: number,
    private readonly opts: LaunchOptions = {},
  ) {
    checkShape(rows, cols, rank, 'GpuPowerSgd');
    this.bytes = powerSgdBytes(rows, cols, rank);
    const tag = `powersgd-r${rank}-${rows}x${cols}`;
    this.payload = createStorage(device, this.bytes, `${tag}-payload`);
    this.q = createStorage(device, 4 * cols * rank, `${tag}-q`);
    this.state = createStorage(device, new Uint32Array(POWERSGD_STATE_BYTES / 4), `${tag}-state`);
    this.rowss = createStorage(device, 4 * rows, `${tag}-rowss`);
    this.params = createUniform(device, packPowerSgdParams(rows, cols, rank, 0), `${tag}-params`);
    this.draw = powerSgdDrawLaunch(device, cols, rank, { params: this.params, q: this.q, state: this.state }, opts);
  }

  /** True once a ctx was given (start or an encode) since construction or reset(). */
  get started(): boolean {
    return this.hostStarted;
  }

  /** Draws the initial Q from ctx now (submitted), so later encodes need no ctx. */
  start(ctx: CodecContext): void {
    this.setContext(ctx);
    // draw = 1, q_valid = 1, q_ref = 0: the next encode orthonormalises the draw against its own column norms.
    this.device.queue.writeBuffer(this.state, 4 * S.draw, new Uint32Array([1, 1, 0]));
    const enc = this.device.createCommandEncoder({ label: 'powersgd-start' });
    encodeLaunches(enc, [this.draw]);
    this.device.queue.submit([enc.finish()]);
    this.hostStarted = true;
  }

  /** Forgets the warm start (queue-ordered); the next ok encode draws a fresh Q from its ctx. */
  reset(): void {
    this.device.queue.writeBuffer(this.state, 4 * S.qValid, new Uint32Array([0]));
    this.hostStarted = false;
  }

  /**
   * The eight launches of one encode of M (rows·cols f32 at `inputOffsetBytes` of `input`, a storage
   * buffer), for the caller to record in one compute pass; the uniform (offset, ctx) is written now,
   * queue-ordered, so record at most one encode per submit when they differ.
   */
  launches(input: GPUBuffer, inputOffsetBytes = 0, ctx?: CodecContext): Launch[] {
    if (!this.hostStarted && ctx === undefined) {
      throw new RangeError(
        `GpuPowerSgd encode: the first encode after construction or reset() draws Q and needs a CodecContext {seed, round, stream} (or call start(ctx) first)`,
      );
    }
    const n = this.rows * this.cols;
    if (!Number.isInteger(inputOffsetBytes) || inputOffsetBytes < 0 || inputOffsetBytes % 4 !== 0) {
      throw new RangeError(`GpuPowerSgd encode: the input offset must be a non-negative multiple of 4 bytes, got ${inputOffsetBytes}`);
    }
    if (inputOffsetBytes + 4 * n > input.size) {
      throw new RangeError(
        `GpuPowerSgd encode: ${n} f32 at byte ${inputOffsetBytes} overflow input buffer "${input.label}" of ${input.size} bytes`,
      );
    }
    if (ctx !== undefined) this.setContext(ctx);
    const align = this.device.limits.minStorageBufferOffsetAlignment;
    const base = Math.floor(inputOffsetBytes / align) * align;
    const off = (inputOffsetBytes - base) / 4;
    const size = 4 * (off + n);
    const b = this.bound;
    if (!b || b.input !== input || b.base !== base || b.size < size) {
      const bindings = { params: this.params, input: { buffer: input, offset: base, size }, q: this.q, payload: this.payload, state: this.state, rowss: this.rowss };
      this.bound = { input, base, size, launches: powerSgdEncodeLaunches(this.device, this.rows, this.cols, this.rank, bindings, off, this.opts) };
    }
    if (off !== this.off) {
      this.device.queue.writeBuffer(this.params, OFF_OFFSET, new Uint32Array([off]));
      this.off = off;
    }
    this.hostStarted = true;
    return this.bound!.launches;
  }

  /** Records one encode into `encoder` (its own compute pass); returns the payload buffer. */
  record(encoder: GPUCommandEncoder, input: GPUBuffer, inputOffsetBytes = 0, ctx?: CodecContext): GPUBuffer {
    encodeLaunches(encoder, this.launches(input, inputOffsetBytes, ctx));
    return this.payload;
  }

  /** Records and submits one encode; returns the payload buffer (read it back with read()). */
  encode(input: GPUBuffer, inputOffsetBytes = 0, ctx?: CodecContext): GPUBuffer {
    const enc = this.device.createCommandEncoder({ label: 'powersgd-encode' });
    this.record(enc, input, inputOffsetBytes, ctx);
    this.device.queue.submit([enc.finish()]);
    return this.payload;
  }

  /** The payload bytes of the last encode (after all submitted work). */
  async read(): Promise<Uint8Array> {
    return new Uint8Array(await readBuffer(this.device, this.payload, this.bytes));
  }

  /** The warm start Q [cols, r] (scaled units; the raw draw right after start()). */
  async readQ(): Promise<Float32Array> {
    return new Float32Array(await readBuffer(this.device, this.q, 4 * this.cols * this.rank));
  }

  async readState(): Promise<GpuPowerSgdState> {
    const buf = await readBuffer(this.device, this.state, POWERSGD_STATE_BYTES);
    const u = new Uint32Array(buf);
    return {
      status: (['ok', 'tiny', 'bad'] as const)[u[S.status]],
      e: new Int32Array(buf)[S.e],
      started: u[S.qValid] !== 0,
      qRef: new Float32Array(buf)[S.qRef],
      normF: new Float32Array(buf)[S.normF],
      replacedQ: u[S.replacedQ],
      replacedP: u[S.replacedP],
    };
  }

  destroy(): void {
    for (const b of [this.payload, this.q, this.state, this.rowss, this.params]) b.destroy();
    this.bound = undefined;
  }

  private setContext(ctx: CodecContext): void {
    this.device.queue.writeBuffer(this.params, CTX_OFFSET, new Uint32Array(ctxWords(ctx)));
  }
}
