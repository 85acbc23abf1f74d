// The training worker's API, shared by the worker (implementation) and the page (comlink proxy).
import type { AssignHeader, JobHeader } from '../protocol/messages';
import type { SampleOptions } from '../model/sample';

/** A `job` message as it came, less the vocabulary (it stays on the page). */
export type WorkerJob = Omit<JobHeader, 'vocab'>;

/** An assignment exactly as the coordinator sent it. */
export type WorkerAssign = AssignHeader;

export type EncodeMode = 'auto' | 'gpu' | 'cpu';

export interface TrainResult {
  round: number;
  baseVersion: number;
  steps: number;
  loss: number;
  tokens: number;
  computeMs: number;
  /** The job's codec name (the update header's codec). */
  codec: string;
  /** Where the update was encoded (the bytes are the same either way). */
  encodedOn: 'gpu' | 'cpu';
  /** Δ = θ_base − θ_local (+ the error-feedback residual), encoded with the job's codec (src/sync). */
  update: Uint8Array;
}

export interface WorkerSampleOptions extends SampleOptions {
  /** Token that pads a prompt shorter than the model needs (e.g. the id of "\n"); default 0. */
  pad?: number;
}

export interface WorkerInfo {
  adapter: string;
}

export interface TrainerWorkerApi {
  /**
   * Acquires the GPU. Rejects with a message saying what to do when there is no WebGPU. `encode`: where
   * updates are encoded; 'auto' (default) uses the GPU kernels unless the adapter is a software one.
   */
  init(opts?: { encode?: EncodeMode }): Promise<WorkerInfo>;
  /** Builds the model for a job; returns the weights version found in the IndexedDB cache (-1: none). */
  loadJob(job: WorkerJob, origin: string): Promise<{ cachedVersion: number; paramCount: number }>;
  setWeights(jobId: string, version: number, params: Float32Array): Promise<void>;
  /** Applies the broadcast step baseVersion → version; rejects when the worker does not hold baseVersion. */
  applyDelta(jobId: string, baseVersion: number, version: number, step: Uint8Array): Promise<void>;
  /** Runs the assigned local steps and returns the encoded update. `stop()` cuts it short. */
  train(a: WorkerAssign): Promise<TrainResult>;
  /**
   * Generates `count` tokens after `prompt` from the current base weights (CPU; greedy at
   * temperature 0, seeded otherwise). Resolves the new tokens only.
   */
  sample(prompt: Int32Array, count: number, opts: WorkerSampleOptions, seed: number): Promise<Int32Array>;
  gpuBytes(): Promise<number>;
}
