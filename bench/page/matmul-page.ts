// The matmul bench page: times our WGSL matmul (src/gpu/kernels/matmul.ts: the variant its selector
// picks for the size on this device, plus the simple variant as a reference column) and TF.js
// tf.matMul on its WebGPU backend in the same page, on the same adapter, the same way, and checks that
// all give the same product. The Node driver (bench/matmul.ts) calls window.starlingMatmulBench per size.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { createStorage, readF32 } from '../../src/gpu/buffers';
import { acquireDevice } from '../../src/gpu/device';
import { gpuChecked } from '../../src/gpu/error-scope';
import { destroyLaunch, encodeLaunches, type Launch } from '../../src/gpu/launch';
import { chooseMatmulVariant, matmulLaunch } from '../../src/gpu/kernels/matmul';
import type { MatmulPageApi, MatmulSizeOptions, MatmulSizeResult, PageDeviceInfo } from '../matmul-types';
import { classifyBackend } from '../report';
import { batchSize, maxAbsDiff, mulberry32, randomMatrix } from '../stats';

const OURS_LAUNCHER =
  'src/gpu/kernels/matmul.ts matmulLaunch with the variant chooseMatmulVariant picks (shaders/matmul_tuned.wgsl or ' +
  'shaders/matmul.wgsl), launch built once per size and encoded with src/gpu/launch.ts encodeLaunches';

// TF.js keeps these internals public in JS but not in its typings; they are what its own data()
// path uses to flush recorded work (backend_webgpu.js getBufferData).
interface TfWebGPUInternals {
  device: GPUDevice;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

let device: GPUDevice | undefined;
let tfBackend: TfWebGPUInternals | undefined;

function log(msg: string): void {
  const el = document.getElementById('log');
  if (el) el.textContent += `\n${msg}`;
}

async function init(): Promise<PageDeviceInfo> {
  const acquired = await acquireDevice({
    label: 'bench-matmul',
    onLost: (e) => console.error(`our device was lost: ${e.message}`),
  });
  device = acquired.device;
  const adapter = await navigator.gpu.requestAdapter();
  const info: Partial<GPUAdapterInfo> = adapter?.info ?? {};
  const fallback = Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter);

  if (!(await tf.setBackend('webgpu'))) throw new Error('TF.js could not initialise its webgpu backend');
  await tf.ready();
  if (tf.getBackend() !== 'webgpu') throw new Error(`TF.js is on backend "${tf.getBackend()}", not webgpu`);
  // tf.backend() is typed as the generic KernelBackend; the check above makes it the WebGPU one.
  tfBackend = tf.backend() as WebGPUBackend & TfWebGPUInternals;

  const adapterFields = {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
  };
  log(`adapter: ${acquired.adapterInfo}`);
  const l = device.limits;
  return {
    adapter: { ...adapterFields, isFallbackAdapter: fallback, summary: acquired.adapterInfo },
    userAgent: navigator.userAgent,
    backend: classifyBackend(adapterFields),
    tfjsVersion: tf.version_core,
    tfjsBackend: tf.getBackend(),
    oursLauncher: OURS_LAUNCHER,
    limits: {
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
    },
  };
}

/** Milliseconds `fn` takes, wall clock in the page. */
async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Max |got[i,j] − Σ_k a[i,k]·b[k,j]| (float64) over `count` sampled (i, j). */
function refError(n: number, a: Float32Array, b: Float32Array, got: Float32Array, count: number, seed: number): number {
  const rand = mulberry32(seed);
  let worst = 0;
  for (let s = 0; s < count; s++) {
    const i = Math.floor(rand() * n);
    const j = Math.floor(rand() * n);
    let acc = 0;
    for (let k = 0; k < n; k++) acc += a[i * n + k] * b[k * n + j];
    const d = Math.abs(got[i * n + j] - acc);
    if (!(d <= worst)) worst = Number.isNaN(d) ? Infinity : d;
  }
  return worst;
}

async function run(o: MatmulSizeOptions): Promise<MatmulSizeResult> {
  if (!device || !tfBackend) throw new Error('init() first');
  const dev = device;
  const be = tfBackend;
  const n = o.size;
  const rand = mulberry32(o.seed);
  const aHost = randomMatrix(n * n, rand);
  const bHost = randomMatrix(n * n, rand);

  // ---- ours: buffers and the launches are built once; a batch is k dispatches in one pass, one submit.
  // "ours" is what the selector picks; "simple" the untuned variant, with its own output buffer.
  const shape = { M: n, N: n, K: n };
  const variant = chooseMatmulVariant(dev.limits, shape).name;
  const aBuf = createStorage(dev, aHost, 'bench-A');
  const bBuf = createStorage(dev, bHost, 'bench-B');
  const cBuf = createStorage(dev, new Float32Array(n * n).fill(NaN), 'bench-C');
  const cSimpleBuf =
    variant === 'simple' ? cBuf : createStorage(dev, new Float32Array(n * n).fill(NaN), 'bench-C-simple');
  let launch: Launch | undefined;
  let simpleLaunch: Launch | undefined;
  // ---- TF.js: k tf.matMul calls, then flush its recorded commands and wait on its device's queue.
  const aT = tf.tensor2d(aHost, [n, n]);
  const bT = tf.tensor2d(bHost, [n, n]);
  let tfLast: tf.Tensor | undefined;

  try {
    launch = await gpuChecked(dev, 'matmul launch', () => matmulLaunch(dev, shape, { a: aBuf, b: bBuf, c: cBuf }));
    simpleLaunch =
      variant === 'simple'
        ? launch
        : await gpuChecked(dev, 'simple matmul launch', () =>
            matmulLaunch(dev, shape, { a: aBuf, b: bBuf, c: cSimpleBuf }, { variant: 'simple' }),
          );
    const timeLaunch = (l: Launch) => async (k: number) => {
      const enc = dev.createCommandEncoder({ label: 'bench-matmul' });
      encodeLaunches(enc, new Array<Launch>(k).fill(l));
      dev.queue.submit([enc.finish()]);
      await dev.queue.onSubmittedWorkDone();
    };
    const ours = timeLaunch(launch);
    const simple = variant === 'simple' ? undefined : timeLaunch(simpleLaunch);
    const tfjs = async (k: number, keepLast = false) => {
      const outs: tf.Tensor[] = [];
      for (let i = 0; i < k; i++) outs.push(tf.matMul(aT, bT));
      be.ensureCommandEncoderReady();
      be.endComputePassEncoder();
      be.submitQueue();
      await be.device.queue.onSubmittedWorkDone();
      if (keepLast) {
        tfLast?.dispose();
        tfLast = outs.pop();
      }
      for (const t of outs) t.dispose();
    };

    // First runs compile the pipelines (and upload TF.js's inputs); they are not timed.
    await gpuChecked(dev, 'matmul first run', () => ours(1));
    if (simple) await gpuChecked(dev, 'simple matmul first run', () => simple(1));
    await tfjs(1);
    // One more single product each estimates the batch size.
    const estOurs = await timed(() => ours(1));
    const estTf = await timed(() => tfjs(1));
    const estSimple = simple ? await timed(() => simple(1)) : estOurs;
    const batch = batchSize([estOurs, estTf, estSimple], o.targetMs, o.maxBatch, o.maxSampleMs);
    for (let w = 0; w < o.warmup; w++) {
      await ours(batch);
      await tfjs(batch);
      if (simple) await simple(batch);
    }
    const oursSamplesMs: number[] = [];
    const tfjsSamplesMs: number[] = [];
    const simpleSamplesMs: number[] = [];
    for (let r = 0; r < o.repeats; r++) {
      const last = r === o.repeats - 1;
      // Rotate who goes first, so no side always runs on a warmer (or hotter) machine.
      const sides = [
        async () => oursSamplesMs.push((await timed(() => ours(batch))) / batch),
        async () => tfjsSamplesMs.push((await timed(() => tfjs(batch, last))) / batch),
        ...(simple ? [async () => simpleSamplesMs.push((await timed(() => simple(batch))) / batch)] : []),
      ];
      for (let i = 0; i < sides.length; i++) await sides[(i + r) % sides.length]();
    }

    // Check the products the timed runs left behind (the last one of each side).
    const oursC = await readF32(dev, cBuf, n * n);
    const simpleC = simple ? await readF32(dev, cSimpleBuf, n * n) : oursC;
    if (!tfLast) throw new Error('no TF.js output kept');
    const tfC = (await tfLast.data()) as Float32Array;
    const checkSeed = o.seed ^ 0x5eed;
    const res: MatmulSizeResult = {
      size: n,
      variant,
      batch,
      oursSamplesMs,
      tfjsSamplesMs,
      simpleSamplesMs: simple ? simpleSamplesMs : oursSamplesMs,
      maxAbsDiff: maxAbsDiff(oursC, tfC),
      oursRefErr: refError(n, aHost, bHost, oursC, o.checkSamples, checkSeed),
      tfjsRefErr: refError(n, aHost, bHost, tfC, o.checkSamples, checkSeed),
      // Sampled entries against float64, and the whole output against ours (itself checked against TF.js).
      simpleRefErr: Math.max(refError(n, aHost, bHost, simpleC, o.checkSamples, checkSeed), maxAbsDiff(simpleC, oursC)),
    };
    const fmt = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(' ');
    log(
      `${n}: ${variant}, batch ${batch}, ours ${fmt(oursSamplesMs)} ms, tfjs ` +
        `${fmt(tfjsSamplesMs)} ms, simple ${fmt(res.simpleSamplesMs ?? [])} ms`,
    );
    return res;
  } finally {
    if (launch) destroyLaunch(launch);
    if (simpleLaunch && simpleLaunch !== launch) destroyLaunch(simpleLaunch);
    aBuf.destroy();
    bBuf.destroy();
    cBuf.destroy();
    if (cSimpleBuf !== cBuf) cSimpleBuf.destroy();
    aT.dispose();
    bT.dispose();
    tfLast?.dispose();
  }
}

const api: MatmulPageApi = { init, run };
globalThis.starlingMatmulBench = api;
