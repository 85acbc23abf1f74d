// Shapes shared by the matmul bench page (bench/page/matmul-page.ts) and its Node driver
// (bench/matmul.ts). Types only: nothing here runs.

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
  /** One line for humans, as src/gpu/device.ts describes it. */
  summary: string;
}

/** What the page found: its adapter, browser and the two implementations being compared. */
export interface PageDeviceInfo {
  adapter: AdapterDescription;
  userAgent: string;
  /** 'SwiftShader' when WebGPU runs on Chromium's CPU rasteriser, else 'real'. */
  backend: 'SwiftShader' | 'real';
  tfjsVersion: string;
  tfjsBackend: string;
  /** Which entry point of ours was timed (module and function), so a reader can find the code. */
  oursLauncher: string;
  /** The device limits our variant selector saw (src/gpu/kernels/matmul.ts chooseMatmulVariant). */
  limits?: {
    maxComputeWorkgroupStorageSize: number;
    maxComputeInvocationsPerWorkgroup: number;
    maxComputeWorkgroupSizeX: number;
    maxComputeWorkgroupSizeY: number;
    maxComputeWorkgroupsPerDimension: number;
  };
}

/** Settings for one size, sent from Node to the page. */
export interface MatmulSizeOptions {
  size: number;
  /** Timed samples per implementation (interleaved ours, tfjs, ours, …). */
  repeats: number;
  /** Untimed batches per implementation before timing (after the first, compiling, run). */
  warmup: number;
  /** Aim for one timed sample (a batch of back-to-back products) to last about this long. */
  targetMs: number;
  maxBatch: number;
  /** Keep one sample of the slower implementation under this (the GPU watchdog, the time budget). */
  maxSampleMs: number;
  seed: number;
  /** Output entries checked against a float64 CPU dot product. */
  checkSamples: number;
}

/** Raw measurements for one size; the Node side takes medians and GFLOP/s. */
export interface MatmulSizeResult {
  size: number;
  /** The variant our selector chose for this size (what "ours" timed): 'tuned', 'simple', … */
  variant?: string;
  /** Products per timed sample. */
  batch: number;
  /** Milliseconds per product, one entry per timed sample. */
  oursSamplesMs: number[];
  tfjsSamplesMs: number[];
  /** The simple variant, timed the same way (the same samples as ours when the selector chose it). */
  simpleSamplesMs?: number[];
  /** max |ours − tfjs| over the whole output. */
  maxAbsDiff: number;
  /** max error of each against a float64 CPU reference on `checkSamples` sampled entries. */
  oursRefErr: number;
  tfjsRefErr: number;
  simpleRefErr?: number;
}

export interface MatmulRow {
  /** The common row fields of bench results (what, ours, theirs, ratio): "512³", and GFLOP/s. */
  what: string;
  ours: number | null;
  theirs: number | null;
  size: number;
  /** Our variant that was timed (see MatmulSizeResult.variant); absent in results from before variants. */
  variant?: string;
  /** null when the outputs disagreed beyond tolerance: a broken kernel posts no speed. */
  oursGflops: number | null;
  tfjsGflops: number | null;
  /** ours / tfjs GFLOP/s (> 1: ours is faster). */
  ratio: number | null;
  /** The simple variant (null if wrong, absent if not measured) and simple / tfjs. */
  simpleGflops?: number | null;
  simpleRatio?: number | null;
  /** Median milliseconds per product. */
  oursMs: number;
  tfjsMs: number;
  simpleMs?: number;
  simpleRefErr?: number;
  maxAbsDiff: number;
  oursRefErr: number;
  tfjsRefErr: number;
  tolerance: number;
  valid: boolean;
  batch: number;
  repeats: number;
}

export interface HostInfo {
  platform: string;
  cpu: string;
  cores: number;
  memGiB: number;
  node: string;
}

export interface MatmulResults {
  bench: 'matmul';
  date: string;
  device: PageDeviceInfo & { chromium: string; host: HostInfo };
  method: string;
  command: string;
  rows: MatmulRow[];
}

/** What the bench page puts on window for the Node driver to call through page.evaluate. */
export interface MatmulPageApi {
  init(): Promise<PageDeviceInfo>;
  run(opts: MatmulSizeOptions): Promise<MatmulSizeResult>;
}

declare global {
  /** Set by bench/page/matmul-page.ts; read by bench/matmul.ts inside page.evaluate. */
  var starlingMatmulBench: MatmulPageApi | undefined;
}
