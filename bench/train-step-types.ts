// Shapes shared by the train-step bench page (bench/page/train-step-page.ts) and its Node driver
// (bench/train-step.ts). Types only: nothing here runs.
import type { TrainStepKind, TrainStepModel } from './train-step-models';
import type { AdamWHyper } from '../src/optim/adamw';
import type { Batch } from '../src/data/split';

/** What the page found: its adapter, browser and the two implementations being compared. */
export interface TrainStepDeviceInfo {
  adapter: {
    vendor: string;
    architecture: string;
    device: string;
    description: string;
    isFallbackAdapter: boolean;
    /** One line for humans, as src/gpu/device.ts describes it. */
    summary: string;
  };
  userAgent: string;
  /** 'SwiftShader' when WebGPU runs on Chromium's CPU rasteriser, else 'real'. */
  backend: 'SwiftShader' | 'real';
  tfjsVersion: string;
  tfjsBackend: string;
}

/**
 * One implementation of one model, ready to train. `step` is everything a donor's step costs, loss readback included.
 */
export interface StepSide {
  impl: string;
  step(b: Batch): Promise<number>;
  /** The weights, flat in the model's spec order (PyTorch layouts). */
  params(): Promise<Float32Array>;
  /** Kernels one step launches, where the implementation can count them (TF.js: tf.profile). */
  kernelsPerStep?(b: Batch): Promise<number>;
  destroy(): void;
}

/** Settings for one model entry, sent from Node to the page. */
export interface TrainStepRunOptions {
  model: TrainStepModel;
  hp: AdamWHyper;
  seed: number;
  /** Steps from identical weights on identical batches whose losses are compared (step 0 before any update). */
  checkSteps: number;
  /** Untimed steps per side after the check steps. */
  warmupSteps: number;
  /** Timed samples per side (interleaved, alternating who goes first). */
  repeats: number;
  /** Aim for one timed sample (a run of back-to-back steps) to last about this long for the faster side. */
  targetMs: number;
  /** Most steps in one timed sample. */
  maxSteps: number;
  /** Keep one sample of the slower side under this. */
  maxSampleMs: number;
  /** Distinct batches, cycled through by both sides in the same order. */
  batchPool: number;
}

/** Raw measurements for one model entry; the Node side takes medians and judges the check. */
export interface TrainStepModelResult {
  id: string;
  kind: TrainStepKind;
  what: string;
  paramCount: number;
  tokensPerStep: number;
  /** Steps per timed sample. */
  stepsPerSample: number;
  /** Milliseconds per step, one entry per timed sample. */
  oursSamplesMs: number[];
  theirsSamplesMs: number[];
  /** Losses returned by the first `checkSteps` steps of each side (step 0: before any update). */
  oursCheckLosses: number[];
  theirsCheckLosses: number[];
  /** Float64 CPU loss of the initial weights on batch 0 (null where the model has no CPU reference). */
  cpuLoss0: number | null;
  /** max |θ_ours − θ_theirs| over all parameters after the check steps (informational). */
  paramMaxAbsDiff: number;
  /** The first (compiling) step of each side, ms. */
  oursFirstStepMs: number;
  theirsFirstStepMs: number;
  /** TF.js tensors alive after the warm-up and after timing: equal unless the TF.js step leaks. */
  tfTensorsAfterWarmup: number;
  tfTensorsAfterTiming: number;
  /**
   * Kernels (GPU dispatches, uploads aside) one TF.js step launches, from tf.profile after timing; null if it could not
   * count.
   */
  theirsKernelsPerStep: number | null;
  /** Which code each side ran, so a reader can find it. */
  oursImpl: string;
  theirsImpl: string;
}

/** What the bench page puts on window for the Node driver to call through page.evaluate. */
export interface TrainStepPageApi {
  init(): Promise<TrainStepDeviceInfo>;
  run(opts: TrainStepRunOptions): Promise<TrainStepModelResult>;
}

declare global {
  /** Set by bench/page/train-step-page.ts; read by bench/train-step.ts inside page.evaluate. */
  var starlingTrainStepBench: TrainStepPageApi | undefined;
}

/** Verdict of the agreement check between the two sides (and the CPU reference at step 0). */
export interface TrainStepCheck {
  /** |ours − theirs| at step 0 (before any update), and the allowed value. */
  step0Diff: number;
  step0Tol: number;
  /**
   * Largest |ours − theirs| over steps 1 … checkSteps−1 (after updates; 0 if checkSteps is 1), and the allowed
   * value.
   */
  laterDiff: number;
  laterTol: number;
  /** |side − float64 CPU| at step 0 (null without a CPU reference). */
  oursCpuDiff: number | null;
  theirsCpuDiff: number | null;
  oursOk: boolean;
  theirsOk: boolean;
  /** Both sides agree with each other (and with the CPU reference). */
  valid: boolean;
}

/** One table row. */
export interface TrainStepRow {
  what: string;
  id: string;
  /** Median ms per step; null when that side failed the check (a broken side posts no time). */
  ours: number | null;
  theirs: number | null;
  /** theirs / ours: > 1 means ours is faster. */
  ratio: number | null;
  oursTokensPerSec: number | null;
  theirsTokensPerSec: number | null;
  paramCount: number;
  tokensPerStep: number;
  stepsPerSample: number;
  repeats: number;
  /** Step-0 losses (before any update). */
  oursLoss0: number;
  theirsLoss0: number;
  check: TrainStepCheck;
  paramMaxAbsDiff: number;
  tfTensorLeak: number;
  theirsKernelsPerStep: number | null;
}

export interface HostInfo {
  platform: string;
  cpu: string;
  cores: number;
  memGiB: number;
  node: string;
}

export interface TrainStepResults {
  bench: 'train-step';
  date: string;
  device: TrainStepDeviceInfo & { chromium: string; host: HostInfo };
  /** The git commit of the code timed, and files under src/ and shaders/ that differed from it (null outside git). */
  tree: { commit: string; changed: string[] } | null;
  hp: AdamWHyper;
  oursImpl: string;
  theirsImpl: string;
  method: string;
  command: string;
  rows: TrainStepRow[];
  /** The raw page results, samples included. */
  raw: TrainStepModelResult[];
}
