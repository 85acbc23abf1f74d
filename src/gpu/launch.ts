// Kernel launches: a pipeline, its bind group and workgroup counts, built once and encoded many
// times. 1-D work is folded into a 2-D grid when it exceeds maxComputeWorkgroupsPerDimension; the
// shaders rebuild the linear index as (workgroup_id.y * num_workgroups.x + workgroup_id.x).
import { createUniform } from './buffers';
import { getPipeline, type PipelineKey } from './pipeline-cache';

export type Binding = GPUBuffer | GPUBufferBinding;

export interface Launch {
  readonly label: string;
  readonly pipeline: GPUComputePipeline;
  readonly bindGroup: GPUBindGroup;
  readonly grid: readonly [number, number, number];
  /** The launch's own uniform buffer (binding 0), if it has one; destroyed by destroyLaunch. */
  readonly uniform?: GPUBuffer;
}

export interface LaunchSpec extends PipelineKey {
  /** Contents of the uniform at @binding(0), if the entry point uses one. */
  uniform?: ArrayBuffer;
  /** Storage bindings by binding number (only those the entry point uses). */
  bindings: Record<number, Binding>;
  /** A 1-D workgroup count (folded to 2-D if needed) or an explicit [x, y] grid. */
  workgroups: number | readonly [number, number];
  /** Overrides the device's maxComputeWorkgroupsPerDimension (tests use it to force the 2-D path). */
  maxWorkgroupsPerDim?: number;
}

/** A grid with x*y >= count and both below `maxPerDim`; surplus workgroups must exit early. */
export function gridFor(count: number, maxPerDim: number): [number, number, number] {
  if (!Number.isInteger(count) || count < 0)
    throw new RangeError(`workgroup count must be a non-negative integer, got ${count}`);
  if (count <= maxPerDim) return [count, 1, 1];
  const y = Math.ceil(count / maxPerDim);
  if (y > maxPerDim) {
    throw new RangeError(`${count} workgroups exceed this GPU's limit of ${maxPerDim}² for a 2-D dispatch`);
  }
  return [Math.ceil(count / y), y, 1];
}

export function createLaunch(device: GPUDevice, spec: LaunchSpec): Launch {
  const label = `${spec.shader}:${spec.entry}`;
  const pipeline = getPipeline(device, spec);
  const maxPerDim = spec.maxWorkgroupsPerDim ?? device.limits.maxComputeWorkgroupsPerDimension;
  let grid: [number, number, number];
  if (typeof spec.workgroups === 'number') {
    grid = gridFor(spec.workgroups, maxPerDim);
  } else {
    const [x, y] = spec.workgroups;
    if (x > maxPerDim || y > maxPerDim) {
      const why = `grid ${x}×${y} exceeds this GPU's maxComputeWorkgroupsPerDimension ${maxPerDim}`;
      throw new RangeError(`${label}: ${why}`);
    }
    grid = [x, y, 1];
  }
  const uniform = spec.uniform ? createUniform(device, spec.uniform, `${label}-uniform`) : undefined;
  const entries: GPUBindGroupEntry[] = [];
  if (uniform) entries.push({ binding: 0, resource: { buffer: uniform } });
  for (const [b, r] of Object.entries(spec.bindings)) {
    entries.push({ binding: Number(b), resource: 'buffer' in r ? r : { buffer: r } });
  }
  const bindGroup = device.createBindGroup({ label, layout: pipeline.getBindGroupLayout(0), entries });
  return { label, pipeline, bindGroup, grid, uniform };
}

/** Records the launches, in order, into one compute pass (each dispatch sees the previous one's writes). */
export function encodeLaunches(encoder: GPUCommandEncoder, launches: readonly Launch[]): void {
  const pass = encoder.beginComputePass();
  for (const l of launches) {
    if (l.grid[0] === 0) continue;
    pass.setPipeline(l.pipeline);
    pass.setBindGroup(0, l.bindGroup);
    pass.dispatchWorkgroups(l.grid[0], l.grid[1], l.grid[2]);
  }
  pass.end();
}

/** Encodes and submits the launches; resolves when the GPU has finished them. */
export async function runLaunches(device: GPUDevice, launches: readonly Launch[]): Promise<void> {
  const enc = device.createCommandEncoder();
  encodeLaunches(enc, launches);
  device.queue.submit([enc.finish()]);
  await device.queue.onSubmittedWorkDone();
}

export function destroyLaunch(l: Launch): void {
  l.uniform?.destroy();
}

/** Packs uniform fields (plain numbers as u32, {f32} as f32) into a little-endian buffer. */
export function packUniform(fields: readonly (number | { f32: number })[]): ArrayBuffer {
  const buf = new ArrayBuffer(Math.max(16, Math.ceil((fields.length * 4) / 16) * 16));
  const dv = new DataView(buf);
  fields.forEach((v, i) => {
    if (typeof v === 'number') {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff)
        throw new RangeError(`uniform field ${i} must be a u32, got ${v}`);
      dv.setUint32(i * 4, v, true);
    } else dv.setFloat32(i * 4, v.f32, true);
  });
  return buf;
}

/** Throws unless `b` spans at least `bytes` bytes (WebGPU would otherwise clamp reads silently). */
export function requireBytes(what: string, b: Binding, bytes: number): void {
  const have = 'buffer' in b ? (b.size ?? b.buffer.size - (b.offset ?? 0)) : b.size;
  if (have < bytes) throw new RangeError(`${what} needs ${bytes} bytes, its binding has ${have}`);
}

/** Throws unless every named dimension is an integer in [1, 2^31). */
export function requireDims(what: string, dims: Record<string, number>): void {
  for (const [k, v] of Object.entries(dims)) {
    if (!Number.isInteger(v) || v < 1 || v >= 2 ** 31)
      throw new RangeError(`${what}: ${k} must be an integer >= 1, got ${v}`);
  }
}

export interface LaunchOptions {
  /** See LaunchSpec.maxWorkgroupsPerDim. */
  maxWorkgroupsPerDim?: number;
}

/**
 * Invocations per row for kernels that reduce along rows in a 64-wide workgroup (layernorm, xent):
 * about 16 values per lane (a power of two, at most 64), so a narrow GPT (C = 64: 4 lanes, 16 rows per workgroup) needs
 * 16× fewer workgroups and barriers than a workgroup per row, while wide rows still use all 64 lanes.
 */
export function rowLanes(cols: number): number {
  let lanes = 1;
  while (lanes < 64 && lanes * 16 < cols) lanes *= 2;
  return lanes;
}
