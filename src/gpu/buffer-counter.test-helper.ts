// Counts GPUBuffer creations on a device, to prove that a training loop allocates its buffers once
// per (model, batch shape) and never again. Wraps `device.createBuffer` until `restore()`.
export interface BufferCounter {
  /** Buffers created since counting began. */
  readonly count: number;
  /** Bytes of the buffers created since counting began. */
  readonly bytes: number;
  /** Labels of the buffers created, in order (to name the culprit when a test fails). */
  readonly labels: string[];
  restore(): void;
}

export function countBufferCreations(device: GPUDevice): BufferCounter {
  // eslint-disable-next-line @typescript-eslint/unbound-method -- called below with .call(this, …)
  const original = device.createBuffer;
  const state = { count: 0, bytes: 0, labels: [] as string[] };
  device.createBuffer = function (this: GPUDevice, desc: GPUBufferDescriptor): GPUBuffer {
    state.count++;
    state.bytes += desc.size;
    state.labels.push(desc.label ?? '(unlabelled)');
    return original.call(this, desc);
  };
  return {
    get count() {
      return state.count;
    },
    get bytes() {
      return state.bytes;
    },
    get labels() {
      return state.labels;
    },
    restore() {
      device.createBuffer = original;
    },
  };
}
