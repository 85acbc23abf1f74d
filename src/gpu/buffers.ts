// Creating, filling and reading back GPU buffers.
import { BufferPool } from './buffer-pool';
import { deviceLostError } from './device';
import { COPY_DST, MAP_MODE_READ, MAP_READ, STORAGE_RW, UNIFORM } from './usage';

type Data = Float32Array | Int32Array | Uint32Array | Uint8Array;

const round4 = (n: number) => Math.ceil(n / 4) * 4;

/** A storage buffer (copyable both ways) of `bytes` bytes, or holding `data`. Sizes round up to 4 bytes. */
export function createStorage(device: GPUDevice, sizeOrData: number | Data, label = 'storage'): GPUBuffer {
  const bytes = typeof sizeOrData === 'number' ? sizeOrData : sizeOrData.byteLength;
  if (!Number.isInteger(bytes) || bytes < 0)
    throw new RangeError(`buffer "${label}": size must be a non-negative integer, got ${bytes}`);
  const max = device.limits.maxBufferSize;
  if (bytes > max)
    throw new RangeError(`buffer "${label}" needs ${bytes} bytes; this GPU allows at most ${max} per buffer`);
  const buf = device.createBuffer({ size: Math.max(4, round4(bytes)), usage: STORAGE_RW, label });
  if (typeof sizeOrData !== 'number') upload(device, buf, sizeOrData);
  return buf;
}

/** A uniform buffer holding `data` (padded to 16 bytes, WGSL's uniform struct alignment). */
export function createUniform(device: GPUDevice, data: ArrayBuffer, label = 'uniform'): GPUBuffer {
  const size = Math.max(16, Math.ceil(data.byteLength / 16) * 16);
  const buf = device.createBuffer({ size, usage: UNIFORM | COPY_DST, label });
  device.queue.writeBuffer(buf, 0, data);
  return buf;
}

/** Writes `data` into `buf` at byte `offset` (queue-ordered with later submits). */
export function upload(device: GPUDevice, buf: GPUBuffer, data: Data, offset = 0): void {
  if (data.byteLength % 4 !== 0) {
    const padded = new Uint8Array(round4(data.byteLength));
    padded.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    data = padded;
  }
  if (offset + data.byteLength > buf.size) {
    throw new RangeError(
      `upload of ${data.byteLength} bytes at offset ${offset} overflows buffer "${buf.label}" of ${buf.size} bytes`,
    );
  }
  device.queue.writeBuffer(buf, offset, data.buffer, data.byteOffset, data.byteLength);
}

const stagingPools = new WeakMap<GPUDevice, BufferPool>();

/** Copies `bytes` bytes of `buf` from byte `offset` to the CPU (after all work submitted so far). */
export async function readBuffer(device: GPUDevice, buf: GPUBuffer, bytes: number, offset = 0): Promise<ArrayBuffer> {
  if (offset % 4 !== 0 || offset < 0) throw new RangeError(`readBuffer offset must be a multiple of 4, got ${offset}`);
  if (offset + bytes > buf.size) {
    throw new RangeError(
      `readBuffer of ${bytes} bytes at ${offset} overflows buffer "${buf.label}" of ${buf.size} bytes`,
    );
  }
  let pool = stagingPools.get(device);
  if (!pool) stagingPools.set(device, (pool = new BufferPool(device, MAP_READ | COPY_DST, 'staging')));
  const copyBytes = round4(bytes);
  const staging = pool.acquire(copyBytes);
  let released = false;
  try {
    const enc = device.createCommandEncoder({ label: 'readback' });
    enc.copyBufferToBuffer(buf, offset, staging, 0, copyBytes);
    device.queue.submit([enc.finish()]);
    try {
      await staging.mapAsync(MAP_MODE_READ, 0, copyBytes);
    } catch (e) {
      throw deviceLostError(device) ?? new Error(`reading GPU buffer "${buf.label}" failed: ${(e as Error).message}`);
    }
    const out = staging.getMappedRange(0, copyBytes).slice(0, bytes);
    staging.unmap();
    pool.release(staging);
    released = true;
    return out;
  } finally {
    // A failed map leaves the buffer in an unknown state: drop it rather than reuse it.
    if (!released) staging.destroy();
  }
}

export async function readF32(device: GPUDevice, buf: GPUBuffer, count: number, offset = 0): Promise<Float32Array> {
  return new Float32Array(await readBuffer(device, buf, count * 4, offset));
}
