// The train-step bench page: one full training step (forward, backward, AdamW, loss read back) of
// our GPU trainer and of the same model in TF.js on its WebGPU backend, in the same page, on the same
// adapter, from the same initial weights, on the same batches. The Node driver (bench/train-step.ts)
// calls window.starlingTrainStepBench.run once per model entry (bench/train-step-models.ts).
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { acquireDevice } from '../../src/gpu/device';
import type { Batch } from '../../src/data/split';
import { MlpTrainer } from '../../src/model/mlp-gpu';
import { mlpLoss } from '../../src/model/mlp-cpu';
import { mlpInit, mlpParamCount } from '../../src/model/mlp-spec';
import type { AdamWHyper } from '../../src/optim/adamw';
import { classifyBackend } from '../report';
import { batchSize, maxAbsDiff } from '../stats';
import { makeBatches, tokensPerStep, type TrainStepKind, type TrainStepModel } from '../train-step-models';
import { tfMlpSide, tfGptSide } from '../train-step-tfjs';
import { GptTrainer } from '../../src/model/gpt-gpu';
import { gptInit, gptParamCount } from '../../src/model/gpt-spec';
import type {
  StepSide,
  TrainStepDeviceInfo,
  TrainStepModelResult,
  TrainStepPageApi,
  TrainStepRunOptions,
} from '../train-step-types';

let device: GPUDevice | undefined;

function log(msg: string): void {
  const el = document.getElementById('log');
  if (el) el.textContent += `\n${msg}`;
}

async function init(): Promise<TrainStepDeviceInfo> {
  const acquired = await acquireDevice({
    label: 'bench-train-step',
    onLost: (e) => console.error(`our device was lost: ${e.message}`),
  });
  device = acquired.device;
  const adapter = await navigator.gpu.requestAdapter();
  const info: Partial<GPUAdapterInfo> = adapter?.info ?? {};
  const fallback = Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter);

  if (!(await tf.setBackend('webgpu'))) throw new Error('TF.js could not initialise its webgpu backend');
  await tf.ready();
  if (tf.getBackend() !== 'webgpu') throw new Error(`TF.js is on backend "${tf.getBackend()}", not webgpu`);

  const adapterFields = {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
  };
  log(`adapter: ${acquired.adapterInfo}`);
  return {
    adapter: { ...adapterFields, isFallbackAdapter: fallback, summary: acquired.adapterInfo },
    userAgent: navigator.userAgent,
    backend: classifyBackend(adapterFields),
    tfjsVersion: tf.version_core,
    tfjsBackend: tf.getBackend(),
  };
}

/** How to build both sides (and the float64 CPU loss, if any) for one kind of model. Add 'gpt' here. */
interface SideBuilders<M extends TrainStepModel> {
  paramCount(m: M): number;
  init(m: M, seed: number): Float32Array;
  ours(dev: GPUDevice, m: M, params: Float32Array, hp: AdamWHyper): Promise<StepSide>;
  theirs(m: M, params: Float32Array, hp: AdamWHyper): StepSide;
  cpuLoss(m: M, params: Float32Array, b: Batch): number | null;
}

const OURS_MLP_IMPL =
  'src/model/mlp-gpu.ts MlpTrainer.step (one command buffer: forward, backward, AdamW; then a 4-byte loss readback)';

const mlpBuilders: SideBuilders<Extract<TrainStepModel, { kind: 'mlp' }>> = {
  paramCount: (m) => mlpParamCount(m.cfg),
  init: (m, seed) => mlpInit(m.cfg, seed),
  async ours(dev, m, params, hp) {
    const trainer = await MlpTrainer.create(dev, m.cfg, m.batch);
    trainer.setParams(params);
    return {
      impl: OURS_MLP_IMPL,
      step: (b) => trainer.step(b.tokens, b.targets, hp),
      params: () => trainer.getParams(),
      destroy: () => trainer.destroy(),
    };
  },
  theirs: (m, params, hp) => tfMlpSide(m.cfg, m.batch, params, hp),
  cpuLoss: (m, params, b) => mlpLoss(m.cfg, params, b.tokens, b.targets),
};

const OURS_GPT_IMPL =
  'src/model/gpt-gpu.ts GptTrainer.step (one command buffer: forward, backward, AdamW; then a 4-byte loss readback)';

const gptBuilders: SideBuilders<Extract<TrainStepModel, { kind: 'gpt' }>> = {
  paramCount: (m) => gptParamCount(m.cfg),
  init: (m, seed) => gptInit(m.cfg, seed),
  async ours(dev, m, params, hp) {
    const trainer = await GptTrainer.create(dev, m.cfg, m.batch);
    trainer.setParams(params);
    return {
      impl: OURS_GPT_IMPL,
      step: (b) => trainer.step(b.tokens, b.targets, hp),
      params: () => trainer.getParams(),
      destroy: () => trainer.destroy(),
    };
  },
  theirs: (m, params, hp) => tfGptSide(m.cfg, m.batch, params, hp),
  // The float64 reference costs seconds per GPT batch in a page; the GPU check is src/model/gpt-gpu.test.ts.
  cpuLoss: () => null,
};

const sideBuilders: { [K in TrainStepKind]: SideBuilders<Extract<TrainStepModel, { kind: K }>> } = {
  mlp: mlpBuilders,
  gpt: gptBuilders,
};

/** The builders for `m`'s kind (TypeScript cannot correlate the union with the mapped type by itself). */
function buildersFor<M extends TrainStepModel>(m: M): SideBuilders<M> {
  return sideBuilders[m.kind] as SideBuilders<M>;
}

// ---------------------------------------------------------------------------------------------------

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function run(o: TrainStepRunOptions): Promise<TrainStepModelResult> {
  if (!device) throw new Error('init() first');
  const m = o.model;
  const b = buildersFor(m);
  const params = b.init(m, o.seed);
  const batches = makeBatches(m, o.batchPool, o.seed + 1);
  const cpuLoss0 = b.cpuLoss(m, params, batches[0]);

  const ours = await b.ours(device, m, params, o.hp);
  let theirs: StepSide | undefined;
  try {
    theirs = b.theirs(m, params, o.hp);
    // Each side walks the batch pool in the same order, from its own counter.
    let oi = 0;
    let ti = 0;
    const th = theirs;
    const oursSteps = async (n: number) => {
      for (let i = 0; i < n; i++) await ours.step(batches[oi++ % batches.length]);
    };
    const theirsSteps = async (n: number) => {
      for (let i = 0; i < n; i++) await th.step(batches[ti++ % batches.length]);
    };

    // Check steps: identical weights, identical batches; the first of each compiles its pipelines.
    const oursCheckLosses: number[] = [];
    const theirsCheckLosses: number[] = [];
    let oursFirstStepMs = 0;
    let theirsFirstStepMs = 0;
    for (let i = 0; i < o.checkSteps; i++) {
      const t0 = performance.now();
      oursCheckLosses.push(await ours.step(batches[oi++ % batches.length]));
      if (i === 0) oursFirstStepMs = performance.now() - t0;
    }
    for (let i = 0; i < o.checkSteps; i++) {
      const t0 = performance.now();
      theirsCheckLosses.push(await th.step(batches[ti++ % batches.length]));
      if (i === 0) theirsFirstStepMs = performance.now() - t0;
    }
    const paramMaxAbsDiff = maxAbsDiff(await ours.params(), await th.params());
    log(
      `${m.id}: check losses ours ${oursCheckLosses.join(' ')} ` +
        `| theirs ${theirsCheckLosses.join(' ')} | cpu ${cpuLoss0}`,
    );

    await oursSteps(o.warmupSteps);
    await theirsSteps(o.warmupSteps);
    // One step each, warm, sizes the timed samples.
    const estOurs = await timed(() => oursSteps(1));
    const estTheirs = await timed(() => theirsSteps(1));
    const steps = batchSize([estOurs, estTheirs], o.targetMs, o.maxSteps, o.maxSampleMs);
    const tfTensorsAfterWarmup = tf.memory().numTensors;

    const oursSamplesMs: number[] = [];
    const theirsSamplesMs: number[] = [];
    for (let r = 0; r < o.repeats; r++) {
      // Alternate which goes first, so neither always runs on a warmer (or hotter) machine.
      if (r % 2 === 0) {
        oursSamplesMs.push((await timed(() => oursSteps(steps))) / steps);
        theirsSamplesMs.push((await timed(() => theirsSteps(steps))) / steps);
      } else {
        theirsSamplesMs.push((await timed(() => theirsSteps(steps))) / steps);
        oursSamplesMs.push((await timed(() => oursSteps(steps))) / steps);
      }
    }
    const tfTensorsAfterTiming = tf.memory().numTensors;
    let theirsKernelsPerStep: number | null = null;
    try {
      theirsKernelsPerStep = th.kernelsPerStep ? await th.kernelsPerStep(batches[ti++ % batches.length]) : null;
    } catch (e) {
      console.warn(`counting TF.js kernels failed: ${(e as Error).message}`);
    }
    log(
      `${m.id}: ${steps} steps/sample, ours ${oursSamplesMs.map((x) => x.toFixed(1)).join(' ')} ` +
        `ms, theirs ${theirsSamplesMs.map((x) => x.toFixed(1)).join(' ')} ms`,
    );

    return {
      id: m.id,
      kind: m.kind,
      what: m.what,
      paramCount: b.paramCount(m),
      tokensPerStep: tokensPerStep(m),
      stepsPerSample: steps,
      oursSamplesMs,
      theirsSamplesMs,
      oursCheckLosses,
      theirsCheckLosses,
      cpuLoss0,
      paramMaxAbsDiff,
      oursFirstStepMs,
      theirsFirstStepMs,
      tfTensorsAfterWarmup,
      tfTensorsAfterTiming,
      theirsKernelsPerStep,
      oursImpl: ours.impl,
      theirsImpl: th.impl,
    };
  } finally {
    ours.destroy();
    theirs?.destroy();
  }
}

const api: TrainStepPageApi = { init, run };
globalThis.starlingTrainStepBench = api;
