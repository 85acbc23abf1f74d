// Reuses GPU buffers of one usage by power-of-two size class, so per-call temporaries (readback
// staging, test scratch) do not allocate every time.
export class BufferPool {
  private free = new Map<number, GPUBuffer[]>();
  private owned = new Set<GPUBuffer>();
  private allocated = 0;

  constructor(
    readonly device: GPUDevice,
    readonly usage: number,
    readonly label = 'pool',
    /** Idle buffers kept per size class; more are destroyed on release. */
    readonly keepPerClass = 4,
  ) {}

  static sizeClass(bytes: number): number {
    if (!Number.isFinite(bytes) || bytes < 0)
      throw new RangeError(`buffer size must be a non-negative number, got ${bytes}`);
    let s = 256;
    while (s < bytes) s *= 2;
    return s;
  }

  /** A buffer of at least `bytes` bytes; give it back with release(). */
  acquire(bytes: number): GPUBuffer {
    const size = BufferPool.sizeClass(bytes);
    const list = this.free.get(size);
    const hit = list?.pop();
    if (hit) return hit;
    const buf = this.device.createBuffer({ size, usage: this.usage, label: `${this.label}-${size}` });
    this.owned.add(buf);
    this.allocated += size;
    return buf;
  }

  release(buf: GPUBuffer): void {
    if (!this.owned.has(buf)) throw new Error(`buffer "${buf.label}" does not belong to pool "${this.label}"`);
    const list = this.free.get(buf.size) ?? [];
    if (list.length >= this.keepPerClass) {
      this.owned.delete(buf);
      this.allocated -= buf.size;
      buf.destroy();
      return;
    }
    list.push(buf);
    this.free.set(buf.size, list);
  }

  /** Bytes currently allocated by this pool (in use or idle). */
  get bytes(): number {
    return this.allocated;
  }

  destroy(): void {
    for (const b of this.owned) b.destroy();
    this.owned.clear();
    this.free.clear();
    this.allocated = 0;
  }
}
