// One arm of the compression benchmark: N simulated donors and a coordinator in one process, through
// the real path's code: each donor is a GPU trainer (src/model) plus a DonorSync (src/sync, what the
// donor's worker runs), the coordinator is a CoordinatorSync (what coordinator/job-engine.ts runs), and
// every message is counted at the size it has on the data channel (src/protocol/wire.ts wireSize:
// the encoded message plus its frame headers). Seeds, batch sampling and AdamW state follow the
// engine and the worker: assignment seed (jobSeed·1000003 + round·7919 + i), an Rng of it for the
// round's batches, AdamW moments kept across rounds. Runs in a bench page (Chromium) or in Node.
import type { Batch } from '../src/data/split';
import {
  createTrainer,
  modelLoss,
  modelParamSpecs,
  modelSampleBatch,
  modelTokensPerStep,
  type ModelConfig,
  type Trainer,
} from '../src/model/model';
import type { JobTrain } from '../src/protocol/messages';
import { wireSize } from '../src/protocol/wire';
import { CoordinatorSync, DonorSync } from '../src/sync/sync';
import { Rng } from '../src/util/rng';
import { median } from './stats';

export interface SimArm {
  name: string;
  codec: string;
  downCodec: string;
  /** H: local steps per round. */
  localSteps: number;
  outerLr: number;
  outerMomentum: number;
  /** Donors' error-feedback decay (default 1). */
  errorDecay?: number;
}

export interface SimJob {
  jobId: string;
  model: ModelConfig;
  /** The job spec's train section (the sim reads the inner optimizer's settings from it). */
  train: JobTrain;
  seed: number;
  /** Local steps every donor takes in the whole run (a multiple of every arm's H). */
  stepsPerDonor: number;
  /** Validation every this many local steps (a multiple of H). */
  evalEvery: number;
}

export interface SimData {
  /** Initial weights θ_0. */
  init: Float32Array;
  /** One training shard per donor. */
  shards: Int32Array[];
  val: Batch;
}

export interface SimPoint {
  /** Local steps per donor so far. */
  step: number;
  valLoss: number;
  /** Cumulative bytes per donor, up and down (mean over donors), excluding the first snapshot. */
  upBytes: number;
  downBytes: number;
}

export interface SimResult {
  arm: SimArm;
  seed: number;
  donors: number;
  rounds: number;
  tokensPerDonor: number;
  curve: SimPoint[];
  finalValLoss: number;
  finalTrainLoss: number;
  /** Mean bytes per donor per round (update up; broadcast step + assignment down). */
  upBytesPerRound: number;
  downBytesPerRound: number;
  /** The job message and the f32 snapshot each donor gets once at the start. */
  setupBytes: number;
  /** Medians over rounds: one local step, one donor's encode, the coordinator's decode+commit. */
  stepMs: number;
  encodeMs: number;
  commitMs: number;
  /** Every donor's reconstructed weights equalled the coordinator's bit for bit after every round. */
  identical: boolean;
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

export async function simulateArm(
  device: GPUDevice,
  job: SimJob,
  arm: SimArm,
  data: SimData,
  onProgress?: (line: string) => void,
): Promise<SimResult> {
  const H = arm.localSteps;
  const N = data.shards.length;
  if (job.stepsPerDonor % H !== 0)
    throw new RangeError(`${arm.name}: stepsPerDonor ${job.stepsPerDonor} is not a multiple of H = ${H}`);
  if (job.evalEvery % H !== 0)
    throw new RangeError(`${arm.name}: evalEvery ${job.evalEvery} is not a multiple of H = ${H}`);
  const layout = modelParamSpecs(job.model);
  const cfg = {
    codec: arm.codec,
    downCodec: arm.downCodec,
    outer: { lr: arm.outerLr, momentum: arm.outerMomentum },
    seed: job.seed,
    errorDecay: arm.errorDecay ?? 1,
    // The arms compare codecs under the plain mean (the results in bench/results were measured so).
    aggregator: 'mean',
  };
  const coord = new CoordinatorSync(cfg, layout, data.init.slice(), 0);
  const n = coord.n;
  const donors: { sync: DonorSync; trainer: Trainer }[] = [];
  try {
    for (let i = 0; i < N; i++) {
      const sync = new DonorSync(cfg, layout);
      sync.setSnapshot(data.init.slice(), 0);
      donors.push({
        sync,
        trainer: await createTrainer(device, job.model, job.train.batch, { gradClip: job.train.gradClip }),
      });
    }
    const jobMsg = {
      jobId: job.jobId,
      name: arm.name,
      model: job.model,
      vocab: Array.from({ length: job.model.vocab }, (_, i) => `t${i}`),
      train: { ...job.train, codec: coord.up.name, downCodec: cfg.downCodec, seed: job.seed, shards: N },
    };
    const setupBytes =
      wireSize({ kind: 'job', header: jobMsg }) +
      wireSize({
        kind: 'weights',
        header: { jobId: job.jobId, version: 0, n, encoding: 'f32' },
        body: new Uint8Array(4 * n),
      });
    const rounds = job.stepsPerDonor / H;
    const curve: SimPoint[] = [];
    const stepMs: number[] = [];
    const encodeMs: number[] = [];
    const commitMs: number[] = [];
    let up = 0;
    let down = 0;
    let identical = true;
    let trainLoss = NaN;
    for (let round = 0; round < rounds; round++) {
      const deltas: Float32Array[] = [];
      let lossSum = 0;
      let upRound = 0;
      const bodies: { bytes: Uint8Array; seed: number }[] = [];
      for (let i = 0; i < N; i++) {
        const d = donors[i];
        const seed = (job.seed * 1_000_003 + round * 7919 + i) >>> 0;
        const t0 = performance.now();
        d.trainer.setParams(d.sync.params!);
        const rng = new Rng(seed);
        const losses = await d.trainer.steps(
          H,
          () => modelSampleBatch(job.model, data.shards[i], job.train.batch, rng),
          job.train,
        );
        const loss = losses.reduce((x, y) => x + y, 0);
        const local = await d.trainer.getParams();
        const t1 = performance.now();
        const bytes = d.sync.encodeUpdate(local, seed, round);
        encodeMs.push(performance.now() - t1);
        stepMs.push((t1 - t0) / H);
        lossSum += loss / H;
        const header = {
          jobId: job.jobId,
          round,
          baseVersion: coord.version,
          steps: H,
          loss: loss / H,
          tokens: H * modelTokensPerStep(job.model, job.train.batch),
          codec: coord.up.name,
          n,
          computeMs: t1 - t0,
        };
        upRound += wireSize({ kind: 'update', header, body: bytes });
        bodies.push({ bytes, seed });
      }
      const t2 = performance.now();
      for (const b of bodies) deltas.push(coord.decodeUpdate(b.bytes, b.seed, round));
      const payload = coord.commit(deltas);
      commitMs.push(performance.now() - t2);
      // The next round's assignment, carrying the broadcast step (what the engine sends a donor one version behind).
      const assign = {
        kind: 'assign' as const,
        header: {
          jobId: job.jobId,
          round: round + 1,
          version: coord.version,
          shard: N - 1,
          steps: H,
          seed: 0xffffffff,
          deadlineMs: 30_000,
        },
        body: payload,
      };
      const downRound = N * wireSize(assign);
      for (const d of donors) {
        d.sync.applyDelta(coord.version - 1, coord.version, payload);
        if (!sameBits(d.sync.params!, coord.params)) identical = false;
      }
      up += upRound / N;
      down += downRound / N;
      trainLoss = lossSum / N;
      const step = (round + 1) * H;
      if (step % job.evalEvery === 0 || round === rounds - 1) {
        const valLoss = modelLoss(job.model, coord.params, data.val);
        if (!Number.isFinite(valLoss))
          throw new Error(`${arm.name}: validation loss ${valLoss} at step ${step}: training diverged`);
        curve.push({ step, valLoss, upBytes: up, downBytes: down });
        onProgress?.(
          `${arm.name} step ${step}/${job.stepsPerDonor}: train ${trainLoss.toFixed(4)} ` +
            `val ${valLoss.toFixed(4)} up ${(up / 1024).toFixed(1)} KiB/donor`,
        );
      }
    }
    return {
      arm,
      seed: job.seed,
      donors: N,
      rounds,
      tokensPerDonor: job.stepsPerDonor * modelTokensPerStep(job.model, job.train.batch),
      curve,
      finalValLoss: curve[curve.length - 1].valLoss,
      finalTrainLoss: trainLoss,
      upBytesPerRound: up / rounds,
      downBytesPerRound: down / rounds,
      setupBytes,
      stepMs: median(stepMs),
      encodeMs: median(encodeMs),
      commitMs: median(commitMs),
      identical,
    };
  } finally {
    for (const d of donors) d.trainer.destroy();
  }
}
