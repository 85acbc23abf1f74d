// Times the causal self-attention launches on Node WebGPU (Dawn; SwiftShader when there is no GPU):
//   npx tsx bench/attention.ts                       # the GPT shapes below
//   SHAPES=16x64x64x2,16x256x64x2 REPS=7 npx tsx bench/attention.ts
// Shapes are BxTxCxNH. Each sample encodes k back-to-back copies of the launches in one command
// buffer (k chosen so a sample takes ~MIN_MS), after a warm-up; the median of REPS samples is
// reported, per copy. "Useful" FLOPs (causal, so half of T²): forward 2·B·T²·C (q·k and p·v),
// backward 4·B·T²·C (dp, dv, dq, dk); the backward's recomputation of the scores is not counted.
// Also checks the outputs against the float64 CPU reference (max abs error), so a broken variant
// cannot post a good time.
import { acquireNodeDevice } from '../src/gpu/node-device';
import { createStorage, readF32 } from '../src/gpu/buffers';
import { destroyLaunch, encodeLaunches, type Launch } from '../src/gpu/launch';
import {
  attentionBackwardCpu,
  attentionBackwardLaunches,
  attentionForwardCpu,
  attentionForwardLaunch,
  type AttentionDims,
} from '../src/gpu/kernels/attention';
import { median, gflops, maxAbsDiff } from './stats';
import { Rng } from '../src/util/rng';

const { device } = await acquireNodeDevice();
const reps = Number(process.env.REPS ?? 5);
const minMs = Number(process.env.MIN_MS ?? 200);
const shapes: AttentionDims[] = (process.env.SHAPES ?? '16x64x64x2,16x64x128x4,16x256x64x2').split(',').map((s) => {
  const [batch, seq, channels, heads] = s.split('x').map(Number);
  return { batch, seq, channels, heads };
});

async function time(launches: Launch[], k: number): Promise<number> {
  const all: Launch[] = [];
  for (let i = 0; i < k; i++) all.push(...launches);
  const enc = device.createCommandEncoder();
  encodeLaunches(enc, all);
  const t = performance.now();
  device.queue.submit([enc.finish()]);
  await device.queue.onSubmittedWorkDone();
  return performance.now() - t;
}

/** Median ms per copy of `launches`. */
async function bench(launches: Launch[]): Promise<number> {
  const first = await time(launches, 1); // warm-up (first dispatch of a pipeline may compile lazily)
  const est = Math.max(0.01, Math.min(first, await time(launches, 1)));
  const k = Math.max(1, Math.min(100, Math.round(minMs / est)));
  const samples: number[] = [];
  for (let r = 0; r < reps; r++) samples.push((await time(launches, k)) / k);
  return median(samples);
}

const fmt = (ms: number, flops: number) => `${ms.toFixed(2)} ms ${gflops(flops, ms).toFixed(2)} GFLOP/s`;

for (const d of shapes) {
  const { batch: B, seq: T, channels: C, heads: NH } = d;
  const rng = new Rng(7);
  const qkv = rng.uniformArray(B * T * 3 * C, -2, 2);
  const dout = rng.uniformArray(B * T * C);
  const QKV = createStorage(device, qkv);
  const DOUT = createStorage(device, dout);
  const OUT = createStorage(device, 4 * B * T * C);
  const LSE = createStorage(device, 4 * B * NH * T);
  const DELTA = createStorage(device, 4 * B * NH * T);
  const DQKV = createStorage(device, 4 * B * T * 3 * C);
  const fwd = [attentionForwardLaunch(device, d, { qkv: QKV, out: OUT, lse: LSE })];
  const bwd = attentionBackwardLaunches(device, d, {
    qkv: QKV,
    out: OUT,
    lse: LSE,
    dout: DOUT,
    delta: DELTA,
    dqkv: DQKV,
  });
  const t0 = performance.now();
  await time([...fwd, ...bwd], 1);
  const firstMs = performance.now() - t0;
  const ffl = 2 * B * T * T * C;
  const bfl = 4 * B * T * T * C;
  const fMs = await bench(fwd);
  const bMs = await bench(bwd);
  const parts: string[] = [];
  if (bwd.length > 1 && process.env.PARTS) {
    for (const l of bwd) parts.push(`${l.label.split(':')[1]} ${(await bench([l])).toFixed(2)} ms`);
  }
  const ref = attentionForwardCpu(d, qkv);
  const errOut = maxAbsDiff(await readF32(device, OUT, B * T * C), ref.out);
  const errLse = maxAbsDiff(await readF32(device, LSE, B * NH * T), ref.lse);
  const errD = maxAbsDiff(await readF32(device, DQKV, B * T * 3 * C), attentionBackwardCpu(d, qkv, dout));
  console.log(
    `B${B} T${T} C${C} NH${NH}: forward ${fmt(fMs, ffl)} | ` +
      `backward ${fmt(bMs, bfl)} | total ${fmt(fMs + bMs, ffl + bfl)}` +
      ` | first run ${firstMs.toFixed(0)} ms | max err out ${errOut.toExponential(1)} ` +
      `lse ${errLse.toExponential(1)} dqkv ${errD.toExponential(1)}` +
      (parts.length ? `\n  ${parts.join(', ')}` : ''),
  );
  [...fwd, ...bwd].forEach(destroyLaunch);
  [QKV, DOUT, OUT, LSE, DELTA, DQKV].forEach((b) => b.destroy());
}
process.exit(0);
