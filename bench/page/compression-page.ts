// The compression bench page: runs one arm (N simulated donors + the coordinator, bench/compression-sim.ts)
// on this page's WebGPU device when the Node driver (bench/compression.ts) calls
// window.starlingCompressionBench.runArm. Data arrive as plain arrays (page.evaluate serialises them).
import { acquireDevice } from '../../src/gpu/device';
import { simulateArm, type SimArm, type SimJob, type SimResult } from '../compression-sim';

export interface CompressionPageData {
  init: number[];
  shards: number[][];
  val: { tokens: number[]; targets: number[] };
}

export interface CompressionPageApi {
  init(): Promise<{ adapter: string; userAgent: string }>;
  runArm(job: SimJob, arm: SimArm, data: CompressionPageData): Promise<SimResult>;
}

declare global {
  /** Set below; read by bench/compression.ts inside page.evaluate. */
  var starlingCompressionBench: CompressionPageApi | undefined;
}

let device: GPUDevice | undefined;

const api: CompressionPageApi = {
  async init() {
    const got = await acquireDevice({
      label: 'bench-compression',
      onLost: (e) => console.error(`device lost: ${e.message}`),
    });
    device = got.device;
    return { adapter: got.adapterInfo, userAgent: navigator.userAgent };
  },
  async runArm(job, arm, data) {
    if (!device) throw new Error('runArm before init');
    return simulateArm(
      device,
      job,
      arm,
      {
        init: Float32Array.from(data.init),
        shards: data.shards.map((s) => Int32Array.from(s)),
        val: { tokens: Int32Array.from(data.val.tokens), targets: Int32Array.from(data.val.targets) },
      },
      (line) => console.log(line),
    );
  },
};

globalThis.starlingCompressionBench = api;
