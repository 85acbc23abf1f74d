// Node-only: a WebGPU device from the `webgpu` package (Dawn), one per process.
import { existsSync } from 'node:fs';
import { create, globals } from 'webgpu';
import { NoWebGPUError, requestDeviceFrom, type AcquiredDevice } from './device';
import { loadNodeShaders } from './node-shaders';

let cached: Promise<AcquiredDevice> | undefined;
// The Dawn instance must outlive its devices: if it is garbage-collected while a device is alive,
// Dawn aborts the process at a random moment ("terminate called ... std::system_error"), seen in
// ~10% of test runs before this reference was kept for the life of the process.
let instance: GPU | undefined;

export function acquireNodeDevice(): Promise<AcquiredDevice> {
  cached ??= open().catch((e) => {
    cached = undefined; // let a later call retry (e.g. after the driver was fixed)
    throw e;
  });
  return cached;
}

/** The process's Dawn instance (Node's navigator.gpu); also installs Dawn's globals and the shaders. */
export function nodeGpu(): GPU {
  if (!instance) {
    // Dawn's classes and enums (GPUBufferUsage, ...) become globals, as in a browser.
    Object.assign(globalThis, globals);
    loadNodeShaders();
    instance = create([]);
  }
  return instance;
}

async function open(): Promise<AcquiredDevice> {
  const gpu = nodeGpu();
  const adapter = (await gpu.requestAdapter()) ?? (await softwareFallbackAdapter());
  if (!adapter) {
    throw new NoWebGPUError(
      'Node WebGPU (Dawn) found no GPU adapter. Without a GPU, install a software Vulkan driver ' +
        '(apt-get install libvulkan1 chromium) and set VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json; ' +
        'with a GPU, install its Vulkan driver. ' +
        `(VK_ICD_FILENAMES is currently ` +
        `${process.env.VK_ICD_FILENAMES ? `"${process.env.VK_ICD_FILENAMES}"` : 'unset'}.)`,
    );
  }
  const got = await requestDeviceFrom(adapter, {
    label: 'starling-node',
    onLost: () => {
      cached = undefined; // the next caller gets a fresh device
    },
  });
  return got;
}

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
// Instances that found no adapter: kept alive too (see `instance` above).
const spentInstances: GPU[] = [];

/**
 * When the system's Vulkan drivers give Dawn no adapter (no GPU; or only Mesa 22's lavapipe, which
 * lacks a feature Dawn needs) and no driver was chosen explicitly, retry once with the SwiftShader
 * driver that Debian's chromium ships, so the CLI and tests work on a GPU-less machine. The Vulkan
 * loader reads VK_ICD_FILENAMES when Dawn creates an instance, so a new instance picks it up.
 */
async function softwareFallbackAdapter(): Promise<GPUAdapter | null> {
  if (process.env.VK_ICD_FILENAMES || process.env.VK_DRIVER_FILES || !existsSync(SWIFTSHADER_ICD)) return null;
  process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  if (instance) spentInstances.push(instance);
  instance = create([]);
  return instance.requestAdapter();
}
