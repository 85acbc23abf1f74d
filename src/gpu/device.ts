// Acquires a WebGPU device in a page or a Web Worker. Errors say what the person can do about them,
// because a donor who sees "undefined is not an object" just closes the tab.

const HOW_TO_ENABLE =
  'Use a Chromium-based browser (Chrome/Edge 113 or newer) with WebGPU enabled (chrome://flags/#enable-unsafe-webgpu ' +
  'if your platform does not enable it by default). On Linux or headless, start Chromium with --enable-unsafe-webgpu ' +
  '--enable-unsafe-swiftshader --use-angle=swiftshader. The page must be a secure context (https:// or ' +
  'http://localhost).';

/** There is no usable WebGPU here; the message tells the person how to get it. */
export class NoWebGPUError extends Error {
  override name = 'NoWebGPUError';
}

/** The GPU device went away (driver reset, GPU process crash, tab backgrounded too long). */
export class DeviceLostError extends Error {
  override name = 'DeviceLostError';
  constructor(
    readonly reason: string,
    detail: string,
  ) {
    super(
      `The GPU device was lost (reason: ${reason}${detail ? `, ${detail}` : ''}). ` +
        'This happens when the browser resets the GPU (driver crash or timeout). ' +
        'Reload the page (or restart the worker) to acquire a new device.',
    );
  }
}

export interface AcquireOptions {
  powerPreference?: GPUPowerPreference;
  label?: string;
  /** Called once if the device is lost for any reason other than our own destroy(). */
  onLost?: (err: DeviceLostError) => void;
}

export interface AcquiredDevice {
  device: GPUDevice;
  /** Human-readable adapter description ("nvidia ampere ... "), for the donor page and logs. */
  adapterInfo: string;
}

const lost = new WeakMap<GPUDevice, DeviceLostError>();

/** The loss error for `device`, if it has been lost. */
export function deviceLostError(device: GPUDevice): DeviceLostError | undefined {
  return lost.get(device);
}

export async function acquireDevice(opts: AcquireOptions = {}): Promise<AcquiredDevice> {
  const g = globalThis as { navigator?: { gpu?: GPU }; isSecureContext?: boolean };
  const gpu = g.navigator?.gpu;
  if (!gpu) {
    if (g.isSecureContext === false) {
      throw new NoWebGPUError(
        `WebGPU is only available in a secure context; open this ` +
          `page over https:// or http://localhost. ${HOW_TO_ENABLE}`,
      );
    }
    throw new NoWebGPUError(`This browser does not expose WebGPU (navigator.gpu is missing). ${HOW_TO_ENABLE}`);
  }
  const adapter = await gpu.requestAdapter(
    opts.powerPreference ? { powerPreference: opts.powerPreference } : undefined,
  );
  if (!adapter) {
    throw new NoWebGPUError(
      `WebGPU is present but no GPU adapter was found (it may be ` +
        `disabled or blocklisted for this GPU/driver). ${HOW_TO_ENABLE}`,
    );
  }
  return requestDeviceFrom(adapter, opts);
}

/** Shared by the browser and Node paths: asks for the adapter's full buffer limits and watches for loss. */
export async function requestDeviceFrom(adapter: GPUAdapter, opts: AcquireOptions = {}): Promise<AcquiredDevice> {
  // The defaults (128 MiB binding, 256 MiB buffer) are far below what most GPUs allow; bigger models need more.
  const requiredLimits: Record<string, number> = {
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
    maxBufferSize: adapter.limits.maxBufferSize,
  };
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredLimits, label: opts.label ?? 'starling' });
  } catch (e) {
    throw new NoWebGPUError(`The GPU adapter refused to create a device: ${(e as Error).message}. ${HOW_TO_ENABLE}`);
  }
  void device.lost.then((info) => {
    if (info.reason === 'destroyed') return;
    const err = new DeviceLostError(String(info.reason), info.message);
    lost.set(device, err);
    opts.onLost?.(err);
  });
  return { device, adapterInfo: await describeAdapter(adapter) };
}

async function describeAdapter(adapter: GPUAdapter): Promise<string> {
  // Chrome 113–120 only had requestAdapterInfo(); later versions have the `info` attribute.
  const legacy = adapter as GPUAdapter & { requestAdapterInfo?: () => Promise<GPUAdapterInfo> };
  const info: Partial<GPUAdapterInfo> = adapter.info ?? (await legacy.requestAdapterInfo?.()) ?? {};
  const parts = [info.vendor, info.architecture, info.device, info.description].filter((s) => s && s.length > 0);
  const uniq = [...new Set(parts)];
  const fallback = (info as { isFallbackAdapter?: boolean }).isFallbackAdapter ? ' (software fallback)' : '';
  return (uniq.length ? uniq.join(' ') : 'unknown GPU adapter') + fallback;
}
