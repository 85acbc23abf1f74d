// The donor's training loop, off the main thread so the page never blocks. Holds the GPU device,
// the job's model on the GPU, the cached data shards and the weights version it trains from.
import * as Comlink from 'comlink';
import { acquireDevice } from '../gpu/device';
import {
  createTrainer,
  modelGenerate,
  modelParamSpecs,
  modelSampleBatch,
  modelTokensPerStep,
  type Trainer,
} from '../model/model';
import { DonorSync } from '../sync/sync';
import { GpuUpdateEncoder, gpuEncoderSupports } from '../sync/gpu-encoder';
import { CpuUpdateEncoder, type UpdateEncoder } from '../sync/update-encoder';
import { validateSampleOptions } from '../model/sample';
import { DonorCache } from '../data/idb-cache';
import { Rng } from '../util/rng';
import type { EncodeMode, TrainerWorkerApi, TrainResult, WorkerAssign, WorkerJob, WorkerSampleOptions } from './api';

let device: GPUDevice | null = null;
let trainer: Trainer | null = null;
let job: WorkerJob | null = null;
let origin = '';
// θ_v as every donor reconstructs it (snapshot + broadcast steps) and the uplink error feedback:
// every assignment starts from θ_v, so a left-out update never leaks into the next.
let sync: DonorSync | null = null;
// The uplink encoder (one residual per DonorSync: rebuilt with it, never mixed): a GpuUpdateEncoder,
// or a CpuUpdateEncoder on the weights read back (codec without a GPU part, or a software adapter,
// where the "GPU" is the CPU and the kernels are slower than the plain loop).
let encoder: UpdateEncoder | null = null;
let encodeMode: EncodeMode = 'auto';
let softwareAdapter = false;
let cache: DonorCache | null = null;
const shards = new Map<number, Int32Array>();
/** The train fields the update and broadcast codecs depend on: a change rebuilds DonorSync. */
const SYNC_KEYS = ['codec', 'downCodec', 'seed', 'errorDecay'] as const;

async function openCache(): Promise<DonorCache | null> {
  if (cache) return cache;
  try {
    cache = await DonorCache.open();
  } catch (e) {
    // A private window may refuse IndexedDB; training still works, only without the cache.
    console.warn(`IndexedDB unavailable, shards will not be cached: ${String(e)}`);
  }
  return cache;
}

async function shardTokens(jobId: string, shard: number): Promise<Int32Array> {
  const have = shards.get(shard);
  if (have) return have;
  const c = await openCache();
  let tokens = await c?.getShard(jobId, shard);
  if (!tokens) {
    const res = await fetch(`${origin}/api/donor/jobs/${encodeURIComponent(jobId)}/shards/${shard}`);
    if (!res.ok) throw new Error(`shard ${shard} of job ${jobId}: HTTP ${res.status} ${await res.text()}`);
    tokens = new Int32Array(await res.arrayBuffer());
    await c?.putShard(jobId, shard, tokens);
  }
  shards.set(shard, tokens);
  return tokens;
}

const api: TrainerWorkerApi = {
  async init(opts: { encode?: EncodeMode } = {}) {
    const got = await acquireDevice();
    device = got.device;
    encodeMode = opts.encode ?? 'auto';
    softwareAdapter = /software fallback|swiftshader|llvmpipe|lavapipe/i.test(got.adapterInfo);
    return { adapter: got.adapterInfo };
  },

  async loadJob(j: WorkerJob, o: string) {
    if (!device) throw new Error('loadJob before init: the GPU was not acquired');
    origin = o;
    if (job?.jobId !== j.jobId || !trainer) {
      encoder?.destroy(); // a GPU encoder's buffers are the trainer's
      encoder = null;
      trainer?.destroy();
      trainer = null; // a failed build below must not leave a destroyed trainer in place
      shards.clear();
      trainer = await createTrainer(device, j.model, j.train.batch, { gradClip: j.train.gradClip });
      sync = null;
    }
    const t = j.train;
    if (!sync || !job || SYNC_KEYS.some((k) => job!.train[k] !== t[k])) {
      sync = new DonorSync(t, modelParamSpecs(j.model));
      encoder?.destroy();
      const useGpu = encodeMode === 'gpu' || (encodeMode === 'auto' && !softwareAdapter);
      const tr = trainer;
      const flatten = (enc: GPUCommandEncoder) => tr.recordFlattenLocal(enc);
      encoder =
        useGpu && gpuEncoderSupports(t.codec, t.errorDecay)
          ? new GpuUpdateEncoder(device, t.codec, tr.paramCount, t.errorDecay, tr.updateBuffers(), flatten)
          : new CpuUpdateEncoder(sync, () => tr.getParams());
    }
    job = j;
    const c = await openCache();
    await c?.pruneOtherJobs(j.jobId);
    const snap = await c?.getSnapshot(j.jobId);
    if (snap && snap.params.length === trainer.paramCount) sync.setSnapshot(snap.params, snap.version);
    return { cachedVersion: sync.version, paramCount: trainer.paramCount };
  },

  async setWeights(jobId: string, version: number, params: Float32Array) {
    if (!trainer || job?.jobId !== jobId) throw new Error(`weights for job ${jobId}, but the worker has not loaded it`);
    if (params.length !== trainer.paramCount) {
      throw new Error(`weights have ${params.length} values, the model has ${trainer.paramCount}`);
    }
    sync!.setSnapshot(params, version);
    await (await openCache())?.putSnapshot(jobId, version, params);
  },

  async applyDelta(jobId: string, baseVersion: number, version: number, step: Uint8Array) {
    if (!trainer || !sync || job?.jobId !== jobId)
      throw new Error(`step for job ${jobId}, but the worker has not loaded it`);
    sync.applyDelta(baseVersion, version, step);
    await (await openCache())?.putSnapshot(jobId, version, sync.params!);
  },

  async train(a: WorkerAssign): Promise<TrainResult> {
    if (!trainer || !sync || !job || job.jobId !== a.jobId)
      throw new Error(`assignment for job ${a.jobId}, which is not loaded`);
    if (sync.version !== a.version) {
      throw new Error(`assignment is for weights v${a.version}, the worker holds v${sync.version}`);
    }
    if (!sync.params) throw new Error('assignment before any weights arrived');
    trainer.setParams(sync.params);
    const tokens = await shardTokens(a.jobId, a.shard);
    const rng = new Rng(a.seed);
    const t0 = performance.now();
    const hp = job.train;
    const model = job.model;
    // One GPU round trip for the whole round: the per-step losses are logged on the GPU.
    const losses = await trainer.steps(a.steps, () => modelSampleBatch(model, tokens, hp.batch, rng), hp);
    const lossSum = losses.reduce((x, y) => x + y, 0);
    if (!encoder) throw new Error("assignment before the job's update encoder was built");
    const update = await encoder.encode(a.seed, a.round);
    const computeMs = performance.now() - t0;
    return Comlink.transfer(
      {
        round: a.round,
        baseVersion: a.version,
        steps: a.steps,
        loss: lossSum / a.steps,
        tokens: a.steps * modelTokensPerStep(job.model, hp.batch),
        computeMs,
        codec: job.train.codec,
        encodedOn: encoder.where,
        update,
      },
      [update.buffer],
    );
  },

  // On the CPU, from the base weights (θ_v as received): the GPU trainers read back only the loss of
  // fixed B × context batches, not one position's logits, and sampling there would also have to
  // leave the local weights and AdamW state of a round in progress untouched.
  async sample(prompt: Int32Array, count: number, opts: WorkerSampleOptions, seed: number) {
    const base = sync?.params;
    if (!job || !base) throw new Error('sample before any weights arrived: load a job and its weights first');
    validateSampleOptions(opts);
    return modelGenerate(job.model, base, prompt, count, { ...opts, seed }, opts.pad ?? 0);
  },

  async gpuBytes() {
    return trainer?.gpuBytes() ?? 0;
  },
};

Comlink.expose(api);
