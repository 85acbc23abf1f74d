// What every GPU trainer shares: the padded parameter layout, its gradient and AdamW state, optional
// global-norm gradient clipping, the flat buffers the update encoder reads, and buffer bookkeeping. A model
// subclass allocates its activations with alloc(), builds its forward and backward launch lists
// once, and runs them through run().
//
// Parameter buffers use a padded layout: each tensor starts at a multiple of the device's
// minStorageBufferOffsetAlignment so kernels can bind it as its own sub-range. AdamW and clipping
// run over the whole padded buffer in one dispatch each (padding stays 0: zero gradient, zero
// state). The flat spec layout is used only at the edges: setParams/getParams/forwardBackward and
// the update.
import type { ParamSpec } from './mlp-spec';
import type { Batch } from '../data/split';
import { validateAdamW, type AdamWHyper } from '../optim/adamw';
import { createStorage, readBuffer, upload } from '../gpu/buffers';
import { encodeLaunches, destroyLaunch, type Binding, type Launch } from '../gpu/launch';
import { adamwLaunch, writeAdamWHyper } from '../gpu/kernels/adamw';
import { gradNormLaunches, gradNormScratchFloats, gradClipLaunch } from '../gpu/kernels/gradnorm';

export type { AdamWHyper };

export interface TrainerOptions {
  /** Clip the global gradient norm to this before AdamW (0 or undefined: no clipping). */
  gradClip?: number;
  /**
   * f16 storage for the weights the matmuls read (f32 master weights, AdamW and accumulation stay
   * f32): after each update the weights are cast to packed binary16 copies, which the forward and the
   * input-gradient matmuls read. Halves weight traffic on GPUs where it is the bottleneck; costs
   * ~2^-11 relative per weight. Supported by GptTrainer.
   */
  halfWeights?: boolean;
}

const PLACEHOLDER_HP: AdamWHyper = { lr: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };
/** Losses steps() logs on the GPU between readbacks. */
const LOSS_LOG = 256;

export abstract class TrainerCore {
  readonly paramCount: number;
  /** Element offset of each tensor in the padded GPU layout. */
  protected readonly padded: number[];
  protected readonly paddedCount: number;
  protected readonly buf: Record<string, GPUBuffer> = {};
  private readonly owned: GPUBuffer[] = [];
  private readonly launches: Launch[] = [];
  private readonly adam: Launch;
  private readonly clip: Launch[];
  private t = 0;
  private destroyed = false;

  protected constructor(
    protected readonly device: GPUDevice,
    /** Names the model in errors and buffer labels. */
    private readonly what: string,
    protected readonly specs: ParamSpec[],
    opts: TrainerOptions,
  ) {
    const last = specs[specs.length - 1];
    this.paramCount = last.offset + last.size;
    const align = device.limits.minStorageBufferOffsetAlignment / 4;
    let off = 0;
    this.padded = specs.map((s) => {
      const at = off;
      off = Math.ceil((off + s.size) / align) * align;
      return at;
    });
    this.paddedCount = off;
    const P = this.paramCount;
    const Pp = this.paddedCount;
    for (const name of ['local', 'grads', 'm', 'v']) this.alloc(name, 4 * Pp);
    for (const name of ['base', 'localFlat', 'residual']) this.alloc(name, 4 * P);
    this.alloc('lossLog', 4 * LOSS_LOG);
    const f = this.buf;
    const clip = opts.gradClip ?? 0;
    if (!(Number.isFinite(clip) && clip >= 0))
      throw new RangeError(`gradClip must be a finite number ≥ 0 (0: off), got ${clip}`);
    this.clip = [];
    if (clip > 0) {
      this.alloc('normPartials', 4 * gradNormScratchFloats([Pp]));
      this.alloc('norm', 4);
      this.clip = this.track([
        ...gradNormLaunches(device, [{ grad: f.grads, n: Pp }], { partials: f.normPartials, norm: f.norm }),
        gradClipLaunch(device, Pp, clip, { norm: f.norm, grad: f.grads }),
      ]);
    }
    this.adam = this.track([
      adamwLaunch(device, Pp, PLACEHOLDER_HP, 1, { params: f.local, grads: f.grads, m: f.m, v: f.v }),
    ])[0];
  }

  /** Forward launches ending in the mean loss in buf.loss (which the subclass allocates). */
  protected abstract forwardLaunches(): Launch[];
  /** Backward launches writing every gradient into buf.grads (overwriting, not accumulating). */
  protected abstract backwardLaunches(): Launch[];
  /** Launches that must follow every change of the weights (e.g. f16 copies); run after AdamW and setParams. */
  protected afterUpdateLaunches(): Launch[] {
    return [];
  }

  /** Checks a batch and uploads it into the subclass's input buffers. */
  protected abstract uploadBatch(tokens: Int32Array, targets: Int32Array): void;

  /** A storage buffer owned (and destroyed) by the trainer; refuses sizes over the binding limit. */
  protected alloc(name: string, bytes: number): GPUBuffer {
    const maxBinding = this.device.limits.maxStorageBufferBindingSize;
    if (bytes > maxBinding) {
      throw new RangeError(
        `${this.what} buffer "${name}" needs ${bytes} bytes, over this GPU's ` +
          `maxStorageBufferBindingSize of ${maxBinding}; use a smaller model or batch`,
      );
    }
    if (this.buf[name]) throw new Error(`${this.what} buffer "${name}" allocated twice`);
    const b = createStorage(this.device, Math.max(4, bytes), `${this.what}-${name}`);
    this.owned.push(b);
    this.buf[name] = b;
    return b;
  }

  /** Registers launches so gpuBytes() counts and destroy() frees their uniforms. */
  protected track(ls: Launch[]): Launch[] {
    this.launches.push(...ls);
    return ls;
  }

  /** Parameter tensor t of the padded buffer `b` (local weights or grads) as a binding. */
  protected view(b: GPUBuffer, tensor: number): GPUBufferBinding {
    return { buffer: b, offset: 4 * this.padded[tensor], size: 4 * this.specs[tensor].size };
  }

  protected tensorIndex(name: string): number {
    const i = this.specs.findIndex((s) => s.name === name);
    if (i < 0) throw new Error(`${this.what} has no parameter "${name}"`);
    return i;
  }

  protected alive(): void {
    if (this.destroyed) throw new Error(`this ${this.what} trainer was destroyed`);
  }

  setParams(flat: Float32Array): void {
    this.alive();
    if (flat.length !== this.paramCount)
      throw new RangeError(`expected ${this.paramCount} parameters, got ${flat.length}`);
    for (let i = 0; i < flat.length; i++) {
      if (!Number.isFinite(flat[i])) throw new RangeError(`parameter ${i} is ${flat[i]}; weights must be finite`);
    }
    upload(this.device, this.buf.base, flat);
    this.specs.forEach((s, t) =>
      upload(this.device, this.buf.local, flat.subarray(s.offset, s.offset + s.size), 4 * this.padded[t]),
    );
    const after = this.afterUpdateLaunches();
    if (after.length) this.run(after, 'set-params');
  }

  async getParams(): Promise<Float32Array> {
    this.alive();
    return this.unpad(await readBuffer(this.device, this.buf.local, 4 * this.paddedCount));
  }

  private unpad(raw: ArrayBuffer): Float32Array {
    const src = new Float32Array(raw);
    const out = new Float32Array(this.paramCount);
    this.specs.forEach((s, t) => out.set(src.subarray(this.padded[t], this.padded[t] + s.size), s.offset));
    return out;
  }

  private run(launches: Launch[], label: string): void {
    const enc = this.device.createCommandEncoder({ label: `${this.what}-${label}` });
    encodeLaunches(enc, launches);
    this.device.queue.submit([enc.finish()]);
  }

  private async readLoss(): Promise<number> {
    return new Float32Array(await readBuffer(this.device, this.buf.loss, 4))[0];
  }

  /** Mean loss over the batch, forward only. */
  async loss(tokens: Int32Array, targets: Int32Array): Promise<number> {
    this.alive();
    this.uploadBatch(tokens, targets);
    this.run(this.forwardLaunches(), 'loss');
    return this.readLoss();
  }

  /** Loss and the raw (unclipped) gradient in the flat layout. */
  async forwardBackward(tokens: Int32Array, targets: Int32Array): Promise<{ loss: number; grads: Float32Array }> {
    this.alive();
    this.uploadBatch(tokens, targets);
    this.run([...this.forwardLaunches(), ...this.backwardLaunches()], 'forward-backward');
    const loss = await this.readLoss();
    const grads = this.unpad(await readBuffer(this.device, this.buf.grads, 4 * this.paddedCount));
    return { loss, grads };
  }

  /** The global gradient norm before clipping at the last step (only when clipping is on). */
  async lastGradNorm(): Promise<number> {
    this.alive();
    if (!this.buf.norm) throw new Error(`${this.what}: gradient clipping is off, so no norm is computed`);
    return new Float32Array(await readBuffer(this.device, this.buf.norm, 4))[0];
  }

  /**
   * One AdamW step (after clipping, if on). The loss may be NaN/Inf if training diverged; the update encoder (src/sync)
   * then refuses to send.
   */
  async step(tokens: Int32Array, targets: Int32Array, hp: AdamWHyper): Promise<number> {
    this.alive();
    validateAdamW(hp);
    this.submitStep(tokens, targets, hp, -1);
    return this.readLoss();
  }

  /**
   * `count` AdamW steps on the batches `next()` returns, in order: the same kernels as `count` calls of
   * step(), but each step's loss is copied into a log on the GPU and read back once per 256 steps, so a
   * round of local steps waits on the GPU once instead of once per step. Returns the per-step losses.
   */
  async steps(count: number, next: (step: number) => Batch, hp: AdamWHyper): Promise<Float32Array> {
    this.alive();
    validateAdamW(hp);
    if (!Number.isInteger(count) || count < 1)
      throw new RangeError(`steps: count must be a positive integer, got ${count}`);
    const losses = new Float32Array(count);
    for (let s0 = 0; s0 < count; s0 += LOSS_LOG) {
      const m = Math.min(LOSS_LOG, count - s0);
      for (let j = 0; j < m; j++) {
        const b = next(s0 + j);
        this.submitStep(b.tokens, b.targets, hp, j);
      }
      losses.set(new Float32Array(await readBuffer(this.device, this.buf.lossLog, 4 * m)), s0);
    }
    return losses;
  }

  /**
   * Uploads a batch and submits one step. queue.writeBuffer is ordered with submissions, so the next
   * step's batch and AdamW hyper-parameters cannot overwrite this step's before it runs.
   */
  private submitStep(tokens: Int32Array, targets: Int32Array, hp: AdamWHyper, logAt: number): void {
    this.uploadBatch(tokens, targets);
    this.t++;
    writeAdamWHyper(this.device, this.adam, hp, this.t, this.paddedCount);
    const enc = this.device.createCommandEncoder({ label: `${this.what}-step` });
    encodeLaunches(enc, [
      ...this.forwardLaunches(),
      ...this.backwardLaunches(),
      ...this.clip,
      this.adam,
      ...this.afterUpdateLaunches(),
    ]);
    if (logAt >= 0) enc.copyBufferToBuffer(this.buf.loss, 0, this.buf.lossLog, 4 * logAt, 4);
    this.device.queue.submit([enc.finish()]);
  }

  /** Forgets the AdamW moments and step count (e.g. after the weights change shape). */
  resetOptimizer(): void {
    this.alive();
    this.t = 0;
    const enc = this.device.createCommandEncoder();
    enc.clearBuffer(this.buf.m);
    enc.clearBuffer(this.buf.v);
    this.device.queue.submit([enc.finish()]);
  }

  updateBuffers(): { base: GPUBuffer; local: GPUBuffer; residual: GPUBuffer } {
    this.alive();
    return { base: this.buf.base, local: this.buf.localFlat, residual: this.buf.residual };
  }

  recordFlattenLocal(enc: GPUCommandEncoder): void {
    this.alive();
    this.specs.forEach((s, t) =>
      enc.copyBufferToBuffer(this.buf.local, 4 * this.padded[t], this.buf.localFlat, 4 * s.offset, 4 * s.size),
    );
  }

  /** Bytes of every GPU buffer the trainer holds (storage and uniforms). */
  gpuBytes(): number {
    let n = 0;
    for (const b of this.owned) n += b.size;
    for (const l of this.launches) n += l.uniform?.size ?? 0;
    return n;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const b of this.owned) b.destroy();
    for (const l of this.launches) destroyLaunch(l);
  }
}

export type { Binding };
