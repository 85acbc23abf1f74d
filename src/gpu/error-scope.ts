// Runs GPU work inside validation and out-of-memory error scopes and throws what they caught.
// WebGPU otherwise reports these asynchronously to an event nobody listens to.
export async function gpuChecked<T>(device: GPUDevice, what: string, fn: () => T | Promise<T>): Promise<T> {
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let result: T;
  try {
    result = await fn();
  } finally {
    const validation = await device.popErrorScope();
    const oom = await device.popErrorScope();
    const err = validation ?? oom;
    // A GPU error explains (and outranks) whatever fn threw: report it, even from finally.
    // eslint-disable-next-line no-unsafe-finally
    if (err) throw new Error(`${what}: GPU ${validation ? 'validation' : 'out-of-memory'} error: ${err.message}`);
  }
  return result;
}
