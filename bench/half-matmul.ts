// f16 storage vs f32 matmul time on Node's WebGPU (Dawn; SwiftShader on a GPU-less machine). Not wired
// into `npm run bench`; run it directly:
//   VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json node --import tsx bench/half-matmul.ts [M N K] [samples]
// Default shape 1024×256×64 (a GPT MLP's c_fc forward at B·T = 1024, C = 64), in the NN form and the
// NT form (weights stored [N, K], as the trainer's forward uses them). Sides, all on the same inputs:
//   f32 auto      matmulLaunch, the variant its selector picks (what the trainer uses today)
//   f32 simple    matmulLaunch forced to the simple 64×64 variant (the kernel half_matmul is modelled on)
//   half f32/f32  halfMatmulLaunch with both operands f32 (the switch off: same code as below, f32 loads)
//   half B        B packed f16 (weights), A f32
//   half A+B      both packed f16
//   cast B        f32_to_half of the K·N weights alone (what refreshing f16 weights from f32 masters costs per step)
// One sample = k dispatches of one prebuilt launch in one compute pass, submit, await
// onSubmittedWorkDone; samples interleaved across sides (rotating who goes first); the median per
// dispatch is printed. Each side's last product is checked against the float64 CPU reference on
// the operands it stored.
import { acquireNodeDevice } from '../src/gpu/node-device';
import { createStorage, readF32 } from '../src/gpu/buffers';
import { gpuChecked } from '../src/gpu/error-scope';
import { encodeLaunches, type Launch } from '../src/gpu/launch';
import { matmulLaunch, matmulCpu } from '../src/gpu/kernels/matmul';
import { halfMatmulLaunch, halfMatmulCpu, type HalfMatmulShape } from '../src/gpu/kernels/half-matmul';
import { f32ToHalfLaunch, halfWords, packHalf } from '../src/gpu/kernels/half';
import { Rng } from '../src/util/rng';
import { matmulTolerance, median } from './stats';

const args = process.argv.slice(2).map(Number);
const [M, N, K] = args.length >= 3 ? args : [1024, 256, 64];
const samples = args[3] ?? 7;
const { device, adapterInfo } = await acquireNodeDevice();
console.log(
  `half-matmul bench: ${M}×${N}×${K}, adapter ${adapterInfo}, ` +
    `shader-f16 on the device: ${device.features.has('shader-f16')}`,
);

async function time(launches: Launch[], k: number): Promise<number> {
  const t0 = performance.now();
  const enc = device.createCommandEncoder();
  for (let i = 0; i < k; i++) encodeLaunches(enc, launches);
  device.queue.submit([enc.finish()]);
  await device.queue.onSubmittedWorkDone();
  return (performance.now() - t0) / k;
}

const rng = new Rng(7);
for (const transB of [false, true]) {
  const a = rng.uniformArray(M * K);
  const b = rng.uniformArray(K * N);
  const A32 = createStorage(device, a);
  const B32 = createStorage(device, b);
  const A16 = createStorage(device, packHalf(a));
  const B16 = createStorage(device, packHalf(b));
  const Bcast = createStorage(device, 4 * halfWords(K * N));
  const half = (s: Omit<HalfMatmulShape, 'M' | 'N' | 'K' | 'transB'>) => ({ M, N, K, transB, ...s });
  interface Side {
    name: string;
    launch: Launch;
    c?: GPUBuffer;
    check?: (got: Float32Array) => number;
    ms: number[];
  }
  const sides: Side[] = [];
  const addMatmul = (name: string, make: (c: GPUBuffer) => Launch, want: () => Float64Array) => {
    const c = createStorage(device, 4 * M * N);
    let launch: Launch;
    try {
      launch = make(c);
    } catch (e) {
      console.log(`  ${name}: skipped (${(e as Error).message})`);
      return;
    }
    sides.push({
      name,
      launch,
      c,
      ms: [],
      check: (got) => {
        const w = want();
        let worst = 0;
        for (let i = 0; i < w.length; i++) worst = Math.max(worst, Math.abs(got[i] - w[i]));
        return worst;
      },
    });
  };
  const shape = { M, N, K, transB };
  const ref32 = () => matmulCpu(shape, a, b);
  addMatmul('f32 auto', (c) => matmulLaunch(device, shape, { a: A32, b: B32, c }), ref32);
  addMatmul('f32 simple', (c) => matmulLaunch(device, shape, { a: A32, b: B32, c }, { variant: 'simple' }), ref32);
  addMatmul(
    'half f32/f32',
    (c) => halfMatmulLaunch(device, half({ halfA: false, halfB: false }), { a: A32, b: B32, c }),
    ref32,
  );
  addMatmul(
    'half B',
    (c) => halfMatmulLaunch(device, half({ halfB: true }), { a: A32, b: B16, c }),
    () => halfMatmulCpu(half({ halfB: true }), a, packHalf(b)),
  );
  addMatmul(
    'half A+B',
    (c) => halfMatmulLaunch(device, half({ halfA: true, halfB: true }), { a: A16, b: B16, c }),
    () => halfMatmulCpu(half({ halfA: true, halfB: true }), packHalf(a), packHalf(b)),
  );
  sides.push({ name: 'cast B', launch: f32ToHalfLaunch(device, K * N, { src: B32, dst: Bcast }), ms: [] });

  const tc = performance.now();
  const ks: number[] = [];
  for (const s of [...sides]) {
    const t = performance.now();
    try {
      // compiles (pipelines are built lazily by the driver) and warms up; a validation error drops the side
      await gpuChecked(device, s.name, () => time([s.launch], 1));
    } catch (e) {
      console.log(`  ${s.name}: dropped (${(e as Error).message.split('\n')[0]})`);
      sides.splice(sides.indexOf(s), 1);
      continue;
    }
    const once = await time([s.launch], 1);
    ks.push(Math.max(1, Math.min(32, Math.round(300 / Math.max(once, 0.01)))));
    console.log(`  ${s.name}: first run ${(performance.now() - t - once).toFixed(0)} ms, then ${once.toFixed(2)} ms`);
  }
  console.log(`  (warm-up ${(performance.now() - tc).toFixed(0)} ms)`);
  for (let r = 0; r < samples; r++) {
    for (let j = 0; j < sides.length; j++) {
      const i = (j + r) % sides.length;
      sides[i].ms.push(await time([sides[i].launch], ks[i]));
    }
  }
  const base = median(sides.find((x) => x.name === 'half f32/f32')!.ms);
  const flops = 2 * M * N * K;
  console.log(`${transB ? 'NT (B stored [N,K])' : 'NN'}: median of ${samples} samples`);
  for (const s of sides) {
    const ms = median(s.ms);
    let check = '';
    if (s.c && s.check) {
      const err = s.check(await readF32(device, s.c, M * N));
      check = `  max |err| vs its CPU reference ${err.toExponential(1)}${err <= matmulTolerance(K) ? '' : ' FAIL'}`;
    }
    const rate = s.c
      ? `${((flops / ms) * 1e-6).toFixed(3)} GFLOP/s`
      : `${((4 * K * N + 4 * halfWords(K * N)) / ms / 1e6).toFixed(3)} GB/s`;
    console.log(
      `  ${s.name.padEnd(13)} ${ms.toFixed(2).padStart(8)} ms  ${rate.padStart(16)}  ` +
        `×${(base / ms).toFixed(2)} of half f32/f32  [${s.ms.map((x) => x.toFixed(1)).join(' ')}]${check}`,
    );
  }
  for (const s of sides) s.c?.destroy();
  [A32, B32, A16, B16, Bcast].forEach((x) => x.destroy());
}
device.destroy();
process.exit(0);
