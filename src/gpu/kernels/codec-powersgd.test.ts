// GPU PowerSGD encoder (shaders/codec_powersgd.wgsl, GpuPowerSgd) against the CPU powerSgdCodec:
//  - the initial Q: bit for bit Math.fround(powerSgdUniform(ctx, i)) (ties and exact draws included);
//  - one encode at shapes 1×1, 1×7, 7×1, 13×29, 64×65, 257×31, ranks 1, 2, 4 (r <= min(rows, cols)):
//    payload size exact, every element written (payload NaN-poisoned first; the CPU decoder refuses
//    NaN), decode(GPU payload) against decode(CPU payload) and against M — general inputs at scales
//    2^-100, 1 and 2^60 (same P~ bits, Q' scaled exactly), max|M| = 1.5·2^127, exactly-rank-r inputs,
//    and nearly dependent columns of A^·Q^ (Gram–Schmidt twice keeps P~ orthonormal);
//  - three warm-started rounds on a slowly changing M (start(ctx) or a ctx on the first encode);
//  - tiny (zero, subnormal) input: all-zero payload, warm start untouched; NaN/Inf: all-NaN payload;
//  - rank-deficient inputs with zero rows and columns: P~ orthonormal, dead columns replaced, zero rows
//    decode to exactly 0;
//  - inputs at unaligned offsets of a larger buffer, folded grids, reset(), argument checks.
// The payload is not byte-equal to the CPU's (f32 sums, tau = 2^-12): the bounds are stated at the top
// and the measured worst cases are in docs/KERNELS.md ("PowerSGD on the GPU").
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../util/rng';
import { createStorage, upload } from '../buffers';
import { NoWebGPUError } from '../device';
import { testDevice } from '../test-helpers';
import type { CodecContext } from '../../compress/codec';
import { powerSgdBytes, powerSgdCodec, powerSgdUniform, type PowerSgdCodec } from '../../compress/powersgd';
import { GpuPowerSgd } from './codec-powersgd';

const SHAPES: [number, number][] = [
  [1, 1],
  [1, 7],
  [7, 1],
  [13, 29],
  [64, 65],
  [257, 31],
];
const RANKS = [1, 2, 4];
const CTX: CodecContext = { seed: 2 ** 40 + 12345, round: 7, stream: 0xffffffff };

/** ‖decode(GPU) − decode(CPU)‖_F / ‖M‖_F after one round from the same initial Q (general inputs). */
const AGREE = 1e-5;
/** ‖decode(GPU) − M‖_F / ‖M‖_F for an exactly rank-r, well-conditioned M. */
const EXACT = 1e-5;
/** ‖decode(GPU) − M‖_F <= (1 + SAME_ERR)·‖decode(CPU) − M‖_F + ERR_FLOOR·‖M‖_F (general inputs). */
const SAME_ERR = 1e-3;
/** f32 rounding of the payload and of the GPU's sums (the CPU's own floor is (2 + 2√r)·2^-24 ≈ 4e-7 at r = 4). */
const ERR_FLOOR = 2e-6;
/** Warm-started rounds: per-round agreement of the decodes (errors of two f32/f64 runs compound). */
const AGREE_WARM = 1e-5;
/** max |P~_gpu − P~_cpu| elementwise where the replacement rule decides columns (rank-deficient inputs). */
const P_TOL = 1e-5;
/** max |P~ᵀP~ − I| (f32 Gram–Schmidt twice; once gives 6.4e-6 on the nearly dependent case). */
const ORTHO = 2e-6;

const worst = { agree: 0, exact: 0, sameErr: 0, warm: 0, ortho: 0, orthoIll: 0, pDiff: 0, pDiffDeficient: 0 };
function note(k: keyof typeof worst, v: number): void {
  worst[k] = Math.max(worst[k], v);
}

/** A test that gets the device, or is skipped with the reason printed when this machine has no WebGPU. */
function gpuTest(name: string, body: (device: GPUDevice, t: TestContext) => Promise<void>): void {
  test(name, async (t) => {
    let device: GPUDevice;
    try {
      device = await testDevice();
    } catch (e) {
      if (!(e instanceof NoWebGPUError)) throw e;
      const reason = `no WebGPU device: ${e.message}`;
      console.log(`[codec-powersgd] skipped: ${reason}`);
      t.skip(reason);
      return;
    }
    await body(device, t);
  });
}

/** One GPU encode with the payload NaN-poisoned first; the payload bytes. */
async function encodeGpu(g: GpuPowerSgd, x: GPUBuffer, offsetBytes = 0, ctx?: CodecContext): Promise<Uint8Array> {
  upload(g.device, g.payload, new Float32Array(g.bytes / 4).fill(NaN));
  assert.equal(g.encode(x, offsetBytes, ctx), g.payload);
  return g.read();
}

/** Uniform in (−1, 1)·scale with magnitudes spread over 3 decades between rows; never 0. */
function general(rows: number, cols: number, rng: Rng, scale = 1): Float32Array {
  const x = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const s = scale * 10 ** (-3 * rng.next());
    for (let j = 0; j < cols; j++) {
      let v = 0;
      while (v === 0) v = Math.fround((2 * rng.next() - 1) * s);
      x[i * cols + j] = v;
    }
  }
  return x;
}

/** f32(scale·A·Bᵀ) for A [rows, k], B [cols, k] (row-major). */
function product(rows: number, cols: number, k: number, A: number[], B: number[], scale = 1): Float32Array {
  const x = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      let s = 0;
      for (let c = 0; c < k; c++) s += A[i * k + c] * B[j * k + c];
      x[i * cols + j] = scale * s;
    }
  }
  return x;
}

/** A·diag(σ)·Bᵀ with Gaussian A [rows, k], B [cols, k] and σ_c = ratio^c: rank k (well conditioned for ratio 1/2, k <= 4). */
function rankK(rows: number, cols: number, k: number, rng: Rng, scale = 1, ratio = 0.5): Float32Array {
  const A = Array.from({ length: rows * k }, () => rng.normal());
  const B = Array.from({ length: cols * k }, (_, i) => rng.normal() * ratio ** (i % k));
  return product(rows, cols, k, A, B, scale);
}

/**
 * A rank-k matrix that f32 holds exactly: A·Bᵀ with entries ±(1..8)/8 (products of ≤ 6 significant
 * bits, exact sums), so the CPU's float64 sees the dead directions too (an f32-rounded rank-k product
 * has rank min(rows, cols) at the 1e-7 level, which the CPU's tau = 2^-30 would keep).
 */
function exactRankK(rows: number, cols: number, k: number, rng: Rng): Float32Array {
  const pick = () => ((1 + rng.int(8)) * (rng.next() < 0.5 ? -1 : 1)) / 8;
  return product(rows, cols, k, Array.from({ length: rows * k }, pick), Array.from({ length: cols * k }, pick));
}

/** ‖a − b‖_F / ‖ref‖_F. */
function rel(a: ArrayLike<number>, b: ArrayLike<number>, ref: ArrayLike<number>): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < ref.length; i++) {
    d += (a[i] - b[i]) ** 2;
    m += ref[i] ** 2;
  }
  return Math.sqrt(d / m);
}

/** max |P~ᵀP~ − I| of a payload's P~ [rows, r]. */
function gramError(payload: Uint8Array, rows: number, r: number): number {
  const P = new Float32Array(payload.buffer, payload.byteOffset, rows * r);
  let e = 0;
  for (let a = 0; a < r; a++) {
    for (let b = 0; b <= a; b++) {
      let s = 0;
      for (let i = 0; i < rows; i++) s += P[i * r + a] * P[i * r + b];
      e = Math.max(e, Math.abs(s - Number(a === b)));
    }
  }
  return e;
}

/**
 * Decodes the GPU payload with the CPU decoder (which refuses the NaN poison) and compares it with the
 * CPU codec's decode of the same round: their difference, and both reconstruction errors.
 */
function compare(what: string, gpuBytes: Uint8Array, cpuBytes: Uint8Array, x: Float32Array, rows: number, cols: number, r: number) {
  const codec = powerSgdCodec(rows, cols, r);
  assert.equal(gpuBytes.length, cpuBytes.length, `${what}: payload bytes`);
  assert.equal(gpuBytes.length, 4 * r * (rows + cols), `${what}: payload bytes`);
  const dg = codec.decode(gpuBytes, rows * cols);
  const dc = codec.decode(cpuBytes, rows * cols);
  const pg = new Float32Array(gpuBytes.buffer, gpuBytes.byteOffset, rows * r);
  const pc = new Float32Array(cpuBytes.buffer, cpuBytes.byteOffset, rows * r);
  const pDiff = pg.reduce((m, v, i) => Math.max(m, Math.abs(v - pc[i])), 0);
  return { agree: rel(dg, dc, x), errGpu: rel(dg, x, x), errCpu: rel(dc, x, x), ortho: gramError(gpuBytes, rows, r), pDiff };
}

type Comparison = ReturnType<typeof compare>;

/** A GPU encoder and a CPU codec for one [rows, cols] rank-r case, with a storage buffer for M. */
class Fixture {
  readonly g: GpuPowerSgd;
  readonly cpu: PowerSgdCodec;
  readonly X: GPUBuffer;
  constructor(
    device: GPUDevice,
    readonly rows: number,
    readonly cols: number,
    readonly r: number,
  ) {
    this.g = new GpuPowerSgd(device, rows, cols, r);
    this.cpu = powerSgdCodec(rows, cols, r);
    this.X = createStorage(device, 4 * rows * cols, 'M');
  }

  /** Uploads x, encodes it on both sides with the same ctx (the GPU payload NaN-poisoned) and compares. */
  async round(what: string, x: Float32Array, ctx?: CodecContext): Promise<Comparison & { bytes: Uint8Array }> {
    upload(this.g.device, this.X, x);
    const bytes = await encodeGpu(this.g, this.X, 0, ctx);
    return { ...compare(what, bytes, this.cpu.encode(x, ctx), x, this.rows, this.cols, this.r), bytes };
  }

  done(): void {
    this.g.destroy();
    this.X.destroy();
  }
}

/** A fixture that has encoded one general M (drawn from rng) with CTX on both sides: a warm start is held. */
async function warmFixture(device: GPUDevice, rows: number, cols: number, r: number, rng: Rng) {
  const f = new Fixture(device, rows, cols, r);
  const x = general(rows, cols, rng);
  return { f, x, first: await f.round('round 0', x, CTX) };
}

function cases(): [number, number, number][] {
  return SHAPES.flatMap(([rows, cols]) => RANKS.filter((r) => r <= Math.min(rows, cols)).map((r): [number, number, number] => [rows, cols, r]));
}

gpuTest('GPU PowerSGD draw: start(ctx) leaves Q = Math.fround(powerSgdUniform(ctx, i)) bit for bit', async (device) => {
  const rows = 8;
  const cols = 4001;
  const r = 8;
  let ties = 0;
  let exact = 0;
  for (const ctx of [CTX, { seed: 0, round: 0, stream: 0 }, { seed: 3, round: 2 ** 53 - 1, stream: 2 ** 32 }]) {
    const g = new GpuPowerSgd(device, rows, cols, r);
    assert.equal(g.started, false);
    g.start(ctx);
    assert.equal(g.started, true);
    const q = await g.readQ();
    for (let i = 0; i < q.length; i++) {
      const u = powerSgdUniform(ctx, i);
      if (q[i] !== Math.fround(u)) assert.fail(`ctx ${JSON.stringify(ctx)}: Q[${i}] is ${q[i]}, want f32(${u}) = ${Math.fround(u)}`);
      const t32 = Math.abs(u) * 2 ** 32; // |t|, an odd integer
      if (t32 >= 2 ** 24 && t32 < 2 ** 25) ties++; // rounded from 25 bits: always a tie
      if (t32 < 2 ** 24) exact++;
    }
    g.destroy();
  }
  assert.ok(ties > 50 && exact > 20, `ties ${ties}, exactly representable draws ${exact}`);
});

gpuTest('GPU PowerSGD one round: payload size exact, every element written, decode agrees with the CPU codec (general inputs)', async (device, t) => {
  const rng = new Rng(1);
  for (const [rows, cols, r] of cases()) {
    const x1 = general(rows, cols, rng);
    let ref = new Float32Array(0);
    // x·2^k is exact in f32 here: the same Â, so the same P~ bits and Q' scaled by exactly 2^k.
    for (const k of [0, -100, 60]) {
      const what = `${rows}×${cols} r=${r} scale 2^${k}`;
      const f = new Fixture(device, rows, cols, r);
      assert.equal(f.g.payload.size, powerSgdBytes(rows, cols, r), `${what}: payload buffer size`);
      const x = x1.map((v) => v * 2 ** k);
      const c = await f.round(what, x, CTX);
      assert.ok(c.agree <= AGREE, `${what}: ‖dec_gpu − dec_cpu‖/‖M‖ = ${c.agree} > ${AGREE}`);
      assert.ok(c.errGpu <= (1 + SAME_ERR) * c.errCpu + ERR_FLOOR, `${what}: projection error ${c.errGpu} (GPU) against ${c.errCpu} (CPU)`);
      assert.ok(c.ortho <= ORTHO, `${what}: max |PᵀP − I| = ${c.ortho}`);
      const st = await f.g.readState();
      assert.equal(st.status, 'ok');
      assert.equal(st.replacedP, 0, `${what}: no P column is degenerate`);
      const got = new Float32Array(c.bytes.buffer, c.bytes.byteOffset, c.bytes.length / 4);
      if (k === 0) ref = got.slice();
      for (let i = 0; i < got.length; i++) {
        const want = i < rows * r ? ref[i] : ref[i] * 2 ** k;
        if (!Object.is(got[i], want)) assert.fail(`${what}: payload float ${i} is ${got[i]}, want ${want} (scale 1 times 2^${k})`);
      }
      note('agree', c.agree);
      note('sameErr', c.errCpu > 1e-3 ? (c.errGpu - c.errCpu) / c.errCpu : 0);
      note('ortho', c.ortho);
      note('pDiff', c.pDiff);
      f.done();
    }
  }
  t.diagnostic(`worst: agree ${worst.agree.toExponential(2)}, error ratio − 1 ${worst.sameErr.toExponential(2)}, ortho ${worst.ortho.toExponential(2)}, max |ΔP~| ${worst.pDiff.toExponential(2)}`);
});

gpuTest('GPU PowerSGD at the top exponent (max|M| = 1.5·2^127, e = 127) agrees with the CPU', async (device) => {
  const f = new Fixture(device, 13, 29, 2);
  const x = general(13, 29, new Rng(10), 2 ** 100);
  x[5] = 1.5 * 2 ** 127;
  const c = await f.round('e = 127', x, CTX);
  assert.equal((await f.g.readState()).e, 127);
  assert.ok(c.agree <= AGREE, `e = 127: ‖dec_gpu − dec_cpu‖/‖M‖ = ${c.agree}`);
  f.done();
});

gpuTest('GPU PowerSGD one round on an exactly rank-r input reconstructs M (and matches the CPU)', async (device, t) => {
  const rng = new Rng(2);
  for (const [rows, cols, r] of cases()) {
    for (const scale of [2 ** -90, 3]) {
      const what = `${rows}×${cols} rank ${r} scale ${scale}`;
      const f = new Fixture(device, rows, cols, r);
      const c = await f.round(what, rankK(rows, cols, r, rng, scale), CTX);
      assert.ok(c.errGpu <= EXACT, `${what}: ‖dec_gpu − M‖/‖M‖ = ${c.errGpu} > ${EXACT}`);
      assert.ok(c.agree <= EXACT, `${what}: ‖dec_gpu − dec_cpu‖/‖M‖ = ${c.agree} > ${EXACT}`);
      note('exact', c.errGpu);
      f.done();
    }
  }
  t.diagnostic(`worst ‖dec_gpu − M‖/‖M‖: ${worst.exact.toExponential(2)}`);
});

gpuTest('GPU PowerSGD on nearly dependent columns of A^·Q^ (σ2/σ1 = 2^-8): P~ still orthonormal (Gram–Schmidt twice)', async (device, t) => {
  const rng = new Rng(9);
  for (const [rows, cols] of [
    [257, 31],
    [64, 65],
  ]) {
    const what = `${rows}×${cols} r=2`;
    // After Q^, the two columns of A^·Q^ differ by ~2^-8 of their length: one Gram–Schmidt pass in f32
    // leaves them 6.4e-6 from orthogonal (measured), two 5e-8.
    const f = new Fixture(device, rows, cols, 2);
    const c = await f.round(what, rankK(rows, cols, 2, rng, 1, 2 ** -8), CTX);
    assert.equal((await f.g.readState()).replacedP, 0, `${what}: the small direction is above tau and kept`);
    assert.ok(c.ortho <= ORTHO, `${what}: max |PᵀP − I| = ${c.ortho}`);
    assert.ok(c.errGpu <= EXACT && c.agree <= EXACT, `${what}: error ${c.errGpu}, against the CPU ${c.agree}`);
    note('orthoIll', c.ortho);
    f.done();
  }
  t.diagnostic(`worst max |PᵀP − I|: ${worst.orthoIll.toExponential(2)}`);
});

gpuTest('GPU PowerSGD warm start: three rounds on a slowly changing M track the CPU codec round by round', async (device, t) => {
  const rng = new Rng(3);
  for (const [rows, cols, r, viaStart] of [
    [13, 29, 2, true],
    [64, 65, 4, false],
    [257, 31, 4, true],
    [1, 7, 1, false],
  ] as [number, number, number, boolean][]) {
    const what = `${rows}×${cols} r=${r}`;
    const base = general(rows, cols, rng);
    const drift = general(rows, cols, rng);
    const f = new Fixture(device, rows, cols, r);
    if (viaStart) {
      f.g.start(CTX);
      f.cpu.start(CTX);
    }
    let lastErr = Infinity;
    for (let round = 0; round < 3; round++) {
      const x = base.map((v, i) => v + 0.02 * round * drift[i]);
      const c = await f.round(`${what} round ${round}`, x, viaStart || round > 0 ? undefined : CTX);
      assert.ok(c.agree <= AGREE_WARM, `${what} round ${round}: ‖dec_gpu − dec_cpu‖/‖M‖ = ${c.agree} > ${AGREE_WARM}`);
      assert.ok(c.ortho <= ORTHO, `${what} round ${round}: max |PᵀP − I| = ${c.ortho}`);
      if (rows > 1) assert.ok(c.errGpu < lastErr * 1.05, `${what} round ${round}: error ${c.errGpu} after ${lastErr}: the warm start did not help`);
      lastErr = c.errGpu;
      note('warm', c.agree);
    }
    f.done();
  }
  t.diagnostic(`worst per-round ‖dec_gpu − dec_cpu‖/‖M‖: ${worst.warm.toExponential(2)}`);
});

gpuTest('GPU PowerSGD tiny input: all-zero payload, warm start untouched; the next round still tracks the CPU', async (device) => {
  const [rows, cols, r] = [64, 65, 4];
  const rng = new Rng(4);
  const { f, x: x0 } = await warmFixture(device, rows, cols, r, rng);
  const q0 = await f.g.readQ();
  const subnormal = new Float32Array(rows * cols).map((_, i) => (i % 3 === 0 ? 0 : (i % 2 ? -1 : 1) * (1 + rng.int(2 ** 23 - 1)) * 2 ** -149));
  for (const [name, x] of [
    ['zero', new Float32Array(rows * cols)],
    ['subnormal', subnormal],
  ] as const) {
    upload(device, f.X, x);
    const bytes = await encodeGpu(f.g, f.X);
    assert.ok(bytes.every((b) => b === 0), `${name}: payload is not all zero`);
    assert.deepEqual(bytes, f.cpu.encode(x), `${name}: the CPU codec sends zeros too`);
    assert.equal((await f.g.readState()).status, 'tiny');
    assert.deepEqual(await f.g.readQ(), q0, `${name}: warm start changed`);
  }
  const c = await f.round('after the tiny rounds', x0.map((v, i) => v + 0.01 * (i % 5)));
  assert.ok(c.agree <= AGREE_WARM, `after the tiny rounds: ${c.agree}`);
  f.done();
});

gpuTest('GPU PowerSGD NaN/Inf input: all-NaN payload (the CPU decoder refuses it), warm start untouched', async (device) => {
  const [rows, cols, r] = [13, 29, 2];
  const { f, x } = await warmFixture(device, rows, cols, r, new Rng(5));
  const q0 = await f.g.readQ();
  for (const bad of [NaN, Infinity, -Infinity]) {
    const y = x.slice();
    y[100] = bad;
    upload(device, f.X, y);
    upload(device, f.g.payload, new Uint8Array(f.g.bytes));
    f.g.encode(f.X);
    const got = await f.g.read();
    assert.ok(new Float32Array(got.buffer).every(Number.isNaN), `${bad}: payload is not all NaN`);
    assert.equal((await f.g.readState()).status, 'bad');
    assert.throws(() => f.cpu.decode(got, rows * cols), /P\[0, 0\] is NaN/);
    assert.throws(() => f.cpu.encode(y), /only finite values/);
    assert.deepEqual(await f.g.readQ(), q0, `${bad}: warm start changed`);
  }
  f.done();
});

gpuTest('GPU PowerSGD rank-deficient inputs (zero rows and columns): P~ orthonormal, dead columns replaced, zero rows decode to 0', async (device, t) => {
  const rng = new Rng(6);
  for (const [rows, cols, k, r] of [
    [64, 65, 1, 4],
    [13, 29, 2, 4],
    [257, 31, 3, 8],
    [7, 1, 1, 1],
  ]) {
    const what = `${rows}×${cols} rank ${k} at r=${r}`;
    const x = exactRankK(rows, cols, k, rng);
    // Zero rows 1 and 65 are owned by the same lane of the orth workgroup: its own ties go to the smaller too.
    const zeroRows = rows > 4 ? [1, rows - 2, ...(rows > 66 ? [65] : [])] : [];
    for (const i of zeroRows) x.fill(0, i * cols, (i + 1) * cols);
    if (cols > 4) for (let i = 0; i < rows; i++) x[i * cols + 3] = 0;
    const f = new Fixture(device, rows, cols, r);
    for (let round = 0; round < 2; round++) {
      const c = await f.round(`${what} round ${round}`, x, round === 0 ? CTX : undefined);
      assert.ok(c.ortho <= ORTHO, `${what} round ${round}: max |PᵀP − I| = ${c.ortho}`);
      assert.ok(c.errGpu <= EXACT, `${what} round ${round}: ‖dec_gpu − M‖/‖M‖ = ${c.errGpu}`);
      // The same fresh directions as the CPU (least covered row, ties to the smallest index).
      assert.ok(c.pDiff <= P_TOL, `${what} round ${round}: max |P~_gpu − P~_cpu| = ${c.pDiff}`);
      const st = await f.g.readState();
      const dead = ((1 << r) - 1) & ~((1 << k) - 1);
      assert.equal(st.replacedP, dead, `${what} round ${round}: replaced P columns 0b${st.replacedP.toString(2)}`);
      // Round 1 starts from Q = Âᵀ·P~, whose dead columns are (numerically) zero: replaced too.
      assert.equal(st.replacedQ, round === 0 ? 0 : dead, `${what} round ${round}: replaced Q columns 0b${st.replacedQ.toString(2)}`);
      const dec = f.cpu.decode(c.bytes, rows * cols);
      for (const i of zeroRows) {
        for (let j = 0; j < cols; j++) assert.equal(dec[i * cols + j], 0, `${what}: zero row ${i} decodes ${dec[i * cols + j]} at column ${j}`);
      }
      note('pDiffDeficient', c.pDiff);
      note('ortho', c.ortho);
    }
    f.done();
  }
  t.diagnostic(`worst max |P~_gpu − P~_cpu|: ${worst.pDiffDeficient.toExponential(2)}, max |PᵀP − I|: ${worst.ortho.toExponential(2)}`);
});

gpuTest('GPU PowerSGD reads M at unaligned offsets of a larger buffer and on folded grids, with identical payloads', async (device) => {
  const [rows, cols, r] = [257, 31, 4];
  const { f, x, first } = await warmFixture(device, rows, cols, r, new Rng(7));
  const ref = first.bytes;
  const big = createStorage(device, new Float32Array(rows * cols + 2000).fill(NaN), 'big');
  const folded = new GpuPowerSgd(device, rows, cols, r, { maxWorkgroupsPerDim: 3 });
  for (const off of [4, 260, 4096 + 12, 256]) {
    upload(device, big, x, off);
    for (const enc of [f.g, folded]) {
      enc.reset();
      assert.deepEqual(await encodeGpu(enc, big, off, CTX), ref, `offset ${off}${enc === folded ? ', folded grid' : ''}: payload differs`);
    }
    upload(device, big, new Float32Array(rows * cols).fill(NaN), off);
  }
  big.destroy();
  folded.destroy();
  f.done();
});

gpuTest('GPU PowerSGD reset() forgets the warm start: the next encode draws from its ctx, as the CPU codec', async (device) => {
  const [rows, cols, r] = [64, 65, 2];
  const { f, x } = await warmFixture(device, rows, cols, r, new Rng(8));
  f.g.reset();
  f.cpu.reset();
  assert.equal(f.g.started, false);
  assert.throws(() => f.g.encode(f.X), /needs a CodecContext/);
  const ctx2 = { ...CTX, round: 8 };
  const c = await f.round('after reset', x, ctx2);
  assert.ok(c.agree <= AGREE, `after reset: ${c.agree}`);
  // A fresh encoder with ctx2 gives the same bytes: the reset encoder kept nothing of round 0.
  const fresh = new GpuPowerSgd(device, rows, cols, r);
  assert.deepEqual(await encodeGpu(fresh, f.X, 0, ctx2), c.bytes);
  fresh.destroy();
  f.done();
});

gpuTest('GpuPowerSgd argument checks name the problem', async (device) => {
  assert.throws(() => new GpuPowerSgd(device, 13, 29, 9), /rank must be an integer in \[1, 8\]/);
  assert.throws(() => new GpuPowerSgd(device, 3, 29, 4), /rank must be an integer in \[1, 3\]/);
  assert.throws(() => new GpuPowerSgd(device, 0, 29, 1), /rows must be an integer >= 1/);
  const g = new GpuPowerSgd(device, 4, 4, 2);
  const X = createStorage(device, 64, 'M');
  assert.throws(() => g.encode(X, 0), /needs a CodecContext/);
  assert.throws(() => g.encode(X, 2, CTX), /multiple of 4/);
  assert.throws(() => g.encode(X, 4, CTX), /overflow input buffer/);
  assert.throws(() => g.start({ ...CTX, seed: 0.5 }), /ctx.seed must be a safe integer/);
  X.destroy();
  g.destroy();
});
