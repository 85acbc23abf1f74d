// GpuUpdateEncoder against DonorSync.encodeUpdate: for every GPU job codec and decay β ∈ {1, 0.9}, at
// odd sizes, several rounds of fresh random (never zero) base and local weights must give the same
// bytes every round, so the residual histories stay in step (a CPU ErrorFeedback run beside DonorSync
// also checks the GPU residual bit for bit). A NaN in Δ, and a d that overflows with a finite Δ, throw
// DonorSync's own error naming the element and leave the residual as it was (the next round's bytes
// still agree). Odd rounds hand θ_local over through encode's `record` hook (a copy into `local`).
// Both paths also run through the UpdateEncoder interface (CpuUpdateEncoder, GpuUpdateEncoder).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../util/rng';
import { createStorage, readBuffer, upload } from '../gpu/buffers';
import { testDevice } from '../gpu/gpu.test-helper';
import { ErrorFeedback } from '../compress/error-feedback';
import type { TensorSpec } from '../compress/model-codec';
import { DonorSync } from './sync';
import { flatLayout, jobCodec, uplinkContext } from './job-codec';
import { GPU_ENCODER_FAMILIES, gpuEncoderSupports, GpuUpdateEncoder } from './gpu-encoder';
import { CpuUpdateEncoder, type UpdateEncoder } from './update-encoder';

const CODECS = [
  'q8',
  'q4:sr',
  'q2',
  'topk:0.05',
  'topk:0.1/q2',
  'topk:0.03/q4:sr',
  'topk:0.05/f16',
  'topk:0.02/int8',
  'chunktop:32/q2',
  'chunktop:7',
  'chunktop:100/q4:sr',
];
const DECAYS = [1, 0.9];
const SIZES = [1, 7, 1000, 21877, 65537];
const ROUNDS = 3;

/** A model-like layout of n parameters (element-wise codecs see it flat anyway). */
function layoutOf(n: number): TensorSpec[] {
  const a = Math.floor(n / 3);
  const sizes = [a, n - 2 * a, a].filter((s) => s > 0);
  let offset = 0;
  return sizes.map((size, i) => {
    const t = { name: `t${i}`, shape: [size], offset, size };
    offset += size;
    return t;
  });
}

/**
 * Fresh weights, never 0: base ~ ±U(0.01, 1), local = base − a step of 10^-5..10^-1 (varying by stretch), some equal
 * to base.
 */
function weights(n: number, rng: Rng): { base: Float32Array; local: Float32Array } {
  const base = new Float32Array(n);
  const local = new Float32Array(n);
  for (let lo = 0; lo < n; lo += 97) {
    const scale = 10 ** (-1 - 4 * rng.next());
    for (let i = lo; i < Math.min(n, lo + 97); i++) {
      base[i] = (rng.next() < 0.5 ? -1 : 1) * (0.01 + rng.next());
      do local[i] = rng.next() < 0.02 ? base[i] : base[i] - scale * (2 * rng.next() - 1);
      while (local[i] === 0);
    }
  }
  return { base, local };
}

function assertSameBytes(what: string, gpu: Uint8Array, cpu: Uint8Array): void {
  if (gpu.length === cpu.length && gpu.every((b, i) => b === cpu[i])) return;
  const at = gpu.findIndex((b, i) => b !== cpu[i]);
  assert.fail(
    `${what}: GPU ${gpu.length} bytes, CPU ${cpu.length}; first ` +
      `difference at byte ${at < 0 ? Math.min(gpu.length, cpu.length) : at}`,
  );
}

/**
 * Donor-side state on both ends: DonorSync (the bytes to match), a CPU ErrorFeedback beside it (the residual), the GPU
 * encoder.
 */
class Pair {
  readonly sync: DonorSync;
  readonly ef: ErrorFeedback;
  readonly base: GPUBuffer;
  readonly local: GPUBuffer;
  readonly residual: GPUBuffer;
  /**
   * Odd rounds upload θ_local here and copy it to `local` through encode's `record` (as the worker copies the padded
   * weights).
   */
  readonly staged: GPUBuffer;
  readonly gpu: GpuUpdateEncoder;
  private readonly seed = 0xc0ffee;

  constructor(
    private readonly device: GPUDevice,
    readonly codec: string,
    readonly n: number,
    decay: number,
  ) {
    this.sync = new DonorSync({ codec, downCodec: 'f32', seed: 5, errorDecay: decay }, layoutOf(n));
    this.ef = new ErrorFeedback(jobCodec(codec, flatLayout(n)), n, decay);
    this.base = createStorage(device, 4 * n, 'base');
    this.local = createStorage(device, 4 * n, 'local');
    this.residual = createStorage(device, new Float32Array(n).fill(NaN), 'residual'); // the encoder clears it
    this.staged = createStorage(device, 4 * n, 'staged');
    this.gpu = new GpuUpdateEncoder(device, codec, n, decay, {
      base: this.base,
      local: this.local,
      residual: this.residual,
    });
  }

  /** One round on both ends; returns [gpu, cpu] results (bytes or the error thrown). */
  async round(
    round: number,
    base: Float32Array,
    local: Float32Array,
  ): Promise<[Uint8Array | Error, Uint8Array | Error]> {
    this.sync.setSnapshot(base, round);
    let cpu: Uint8Array | Error;
    try {
      cpu = this.sync.encodeUpdate(local, this.seed + round, round);
      const delta = Float32Array.from(base, (b, i) => b - local[i]);
      assertSameBytes(
        `${this.codec} n=${this.n} round ${round}: ErrorFeedback beside DonorSync`,
        this.ef.encode(delta, uplinkContext(this.seed + round, round)),
        cpu,
      );
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      cpu = e;
    }
    upload(this.device, this.base, base);
    const staged = round % 2 === 1;
    upload(this.device, staged ? this.staged : this.local, local);
    const record = (enc: GPUCommandEncoder) => enc.copyBufferToBuffer(this.staged, 0, this.local, 0, 4 * this.n);
    let gpu: Uint8Array | Error;
    try {
      gpu = await this.gpu.encode(this.seed + round, round, staged ? record : undefined);
    } catch (e) {
      gpu = e as Error;
    }
    return [gpu, cpu];
  }

  async assertResidual(what: string): Promise<void> {
    const got = new Uint32Array(await readBuffer(this.device, this.residual, 4 * this.n));
    const want = new Uint32Array(this.ef.residual.buffer);
    const i = got.findIndex((v, j) => v !== want[j]);
    if (i >= 0)
      assert.fail(
        `${what}: residual ${i} is 0x${got[i].toString(16)} on the GPU, 0x${want[i].toString(16)} on the CPU`,
      );
  }

  destroy(): void {
    this.gpu.destroy();
    [this.base, this.local, this.residual, this.staged].forEach((b) => b.destroy());
  }
}

for (const codec of CODECS) {
  for (const decay of DECAYS) {
    test(`GPU update ${codec}, decay ${decay}: DonorSync's bytes every round at n ∈ {${SIZES.join(', ')}}; a NaN in Δ throws naming it, residual kept`, async () => {
      const device = await testDevice();
      for (const n of SIZES) {
        const rng = new Rng(n * 31 + codec.length + (decay === 1 ? 0 : 7));
        const p = new Pair(device, codec, n, decay);
        let round = 0;
        for (; round < ROUNDS; round++) {
          const { base, local } = weights(n, rng);
          const [gpu, cpu] = await p.round(round, base, local);
          assert.ok(
            cpu instanceof Uint8Array && gpu instanceof Uint8Array,
            `n=${n} round ${round}: ${String(cpu)} / ${String(gpu)}`,
          );
          assertSameBytes(`${codec} β=${decay} n=${n} round ${round}`, gpu, cpu);
          await p.assertResidual(`${codec} β=${decay} n=${n} round ${round}`);
        }
        // A diverged round: same RangeError (naming the parameter) on both; nothing sent, residuals kept.
        const { base, local } = weights(n, rng);
        const at = rng.int(n);
        local[at] = NaN;
        const [gpu, cpu] = await p.round(round++, base, local);
        assert.ok(
          cpu instanceof RangeError && gpu instanceof RangeError,
          `n=${n} NaN round: ${String(cpu)} / ${String(gpu)}`,
        );
        assert.equal(gpu.message, cpu.message);
        assert.match(gpu.message, new RegExp(`holds NaN at parameter ${at}:`));
        await p.assertResidual(`${codec} β=${decay} n=${n} after the NaN round`);
        const next = weights(n, rng);
        const [g2, c2] = await p.round(round, next.base, next.local);
        assert.ok(c2 instanceof Uint8Array && g2 instanceof Uint8Array);
        assertSameBytes(`${codec} β=${decay} n=${n} round after the NaN round`, g2, c2);
        p.destroy();
      }
    });
  }
}

test('GPU update: a d that overflows although Δ is finite throws the model codec error naming it, residual kept', async () => {
  const device = await testDevice();
  const n = 100;
  const p = new Pair(device, 'q2', n, 1);
  const rng = new Rng(3);
  // Round 0: element 1 (2e38) shares its block with 3e38, so q2 (one level) sends 3e38 and keeps −1e38.
  let { base, local } = weights(n, rng);
  base[0] = 1.5e38;
  local[0] = -1.5e38;
  base[1] = 1e38;
  local[1] = -1e38;
  let [gpu, cpu] = await p.round(0, base, local);
  assert.ok(cpu instanceof Uint8Array && gpu instanceof Uint8Array);
  assertSameBytes('round 0', gpu, cpu);
  // Round 1: Δ = −3e38 there, d = −4e38 overflows to −Inf.
  ({ base, local } = weights(n, rng));
  base[1] = -1.5e38;
  local[1] = 1.5e38;
  [gpu, cpu] = await p.round(1, base, local);
  assert.ok(cpu instanceof RangeError && gpu instanceof RangeError, `${String(cpu)} / ${String(gpu)}`);
  assert.equal(gpu.message, cpu.message);
  assert.match(gpu.message, /element 1 \(flat 1\) is -Infinity/);
  await p.assertResidual('after the overflow');
  ({ base, local } = weights(n, rng));
  [gpu, cpu] = await p.round(2, base, local);
  assert.ok(cpu instanceof Uint8Array && gpu instanceof Uint8Array);
  assertSameBytes('round 2', gpu, cpu);
  p.destroy();
});

test('gpuEncoderSupports: quantization, top-k and chunk top (any inner value codec) only; decays 0 and [2^-800, 1]', async () => {
  for (const name of [
    'q8',
    'q4:sr',
    'q2',
    'topk:0.05/q2',
    'topk:1',
    'topk:0.01/f16',
    'topk:0.1/int8',
    'chunktop:32/q2',
    'chunktop:2/f16',
  ])
    assert.ok(gpuEncoderSupports(name), name);
  for (const name of ['f32', 'f16', 'int8', 'randomk:0.1', 'cocktail', 'powersgd:2', 'q3', 'nonsense', ''])
    assert.ok(!gpuEncoderSupports(name), name);
  assert.ok(gpuEncoderSupports('q8', 0) && gpuEncoderSupports('q8', 2 ** -800));
  assert.ok(!gpuEncoderSupports('q8', 1e-300) && !gpuEncoderSupports('q8', 1.5) && !gpuEncoderSupports('q8', NaN));
  const device = await testDevice();
  const b = createStorage(device, 16);
  const bufs = { base: b, local: b, residual: b };
  assert.throws(() => new GpuUpdateEncoder(device, 'powersgd:2', 4, 1, bufs), /no GPU encoder/);
  assert.throws(() => new GpuUpdateEncoder(device, 'q8', 4, 1e-300, bufs), /decay must be 0 or in \[2\^-800, 1\]/);
  assert.throws(() => new GpuUpdateEncoder(device, 'q8', 5, 1, bufs), /needs 20 bytes/);
  b.destroy();
});

test('UpdateEncoder: the CPU and GPU encoders (record hook given once) send the same bytes, also after reset()', async () => {
  const device = await testDevice();
  for (const codec of ['q4:sr', 'topk:0.03/q4:sr', 'chunktop:7/f16']) {
    const n = 1031;
    const rng = new Rng(codec.length * 13);
    const sync = new DonorSync({ codec, downCodec: 'f32', seed: 5, errorDecay: 0.9 }, layoutOf(n));
    let local: Float32Array = new Float32Array(n);
    const cpu: UpdateEncoder = new CpuUpdateEncoder(sync, () => local);
    const base = createStorage(device, 4 * n, 'base');
    const localBuf = createStorage(device, new Float32Array(n).fill(NaN), 'local');
    const staged = createStorage(device, 4 * n, 'staged');
    const residual = createStorage(device, 4 * n, 'residual');
    const record = (enc: GPUCommandEncoder) => enc.copyBufferToBuffer(staged, 0, localBuf, 0, 4 * n);
    const gpu: UpdateEncoder = new GpuUpdateEncoder(device, codec, n, 0.9, { base, local: localBuf, residual }, record);
    assert.equal(cpu.where, 'cpu');
    assert.equal(gpu.where, 'gpu');
    assert.equal(gpu.codec.name, cpu.codec.name);
    for (let round = 0; round < 4; round++) {
      if (round === 2) {
        cpu.reset();
        gpu.reset();
      }
      const w = weights(n, rng);
      sync.setSnapshot(w.base, round);
      local = w.local;
      upload(device, base, w.base);
      upload(device, staged, w.local);
      const [g, c] = [await gpu.encode(7 + round, round), await cpu.encode(7 + round, round)];
      assertSameBytes(`${codec} round ${round} through UpdateEncoder`, g, c);
    }
    gpu.destroy();
    cpu.destroy();
    [base, localBuf, staged, residual].forEach((b) => b.destroy());
  }
});

test('GPU_ENCODER_FAMILIES: the codec kinds with a GPU part are the ones gpuEncoderSupports accepts', () => {
  assert.deepEqual(Object.keys(GPU_ENCODER_FAMILIES).sort(), ['chunktop', 'quant', 'topk']);
  const named = [
    ['quant', 'q4'],
    ['topk', 'topk:0.1'],
    ['chunktop', 'chunktop:8'],
    ['randomk', 'randomk:0.1'],
  ];
  for (const [kind, name] of named) {
    assert.equal(gpuEncoderSupports(name), kind in GPU_ENCODER_FAMILIES, name);
  }
});
