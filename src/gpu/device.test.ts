import { test } from 'node:test';
import assert from 'node:assert/strict';
import { acquireDevice, NoWebGPUError, DeviceLostError } from './device';
import { acquireNodeDevice, nodeGpu } from './node-device';
import { createStorage, readBuffer } from './buffers';

/** Runs fn with globalThis.navigator (and isSecureContext) replaced, restoring them afterwards. */
async function withGlobals(nav: unknown, secure: boolean | undefined, fn: () => Promise<void>): Promise<void> {
  const saved = ['navigator', 'isSecureContext'].map(
    (k) => [k, Object.getOwnPropertyDescriptor(globalThis, k)] as const,
  );
  Object.defineProperty(globalThis, 'navigator', { value: nav, configurable: true, writable: true });
  Object.defineProperty(globalThis, 'isSecureContext', { value: secure, configurable: true, writable: true });
  try {
    await fn();
  } finally {
    for (const [k, d] of saved) {
      if (d) Object.defineProperty(globalThis, k, d);
      else delete (globalThis as Record<string, unknown>)[k];
    }
  }
}

test('no navigator.gpu: NoWebGPUError says which browser and which flags', async () => {
  await withGlobals({}, true, async () => {
    await assert.rejects(acquireDevice(), (e: unknown) => {
      assert.ok(e instanceof NoWebGPUError);
      assert.match(e.message, /navigator\.gpu is missing/);
      assert.match(e.message, /Chromium-based browser \(Chrome\/Edge 113 or newer\)/);
      assert.match(e.message, /--enable-unsafe-webgpu --enable-unsafe-swiftshader --use-angle=swiftshader/);
      return true;
    });
  });
});

test('insecure context: NoWebGPUError asks for https or localhost', async () => {
  await withGlobals({}, false, async () => {
    await assert.rejects(
      acquireDevice(),
      (e: unknown) => e instanceof NoWebGPUError && /secure context.*http:\/\/localhost/.test(e.message),
    );
  });
});

test('no adapter: NoWebGPUError says none was found', async () => {
  await withGlobals({ gpu: { requestAdapter: async () => null } }, true, async () => {
    await assert.rejects(
      acquireDevice(),
      (e: unknown) => e instanceof NoWebGPUError && /no GPU adapter was found/.test(e.message),
    );
  });
});

test('acquireDevice works on a real adapter and asks for its buffer limits', async () => {
  // Node's Dawn instance, handed to the browser path as if it were navigator.gpu.
  const gpu = nodeGpu();
  await withGlobals({ gpu }, true, async () => {
    const { device, adapterInfo } = await acquireDevice();
    const a = await gpu.requestAdapter();
    assert.ok(a);
    assert.equal(device.limits.maxStorageBufferBindingSize, a.limits.maxStorageBufferBindingSize);
    assert.equal(device.limits.maxBufferSize, a.limits.maxBufferSize);
    assert.ok(adapterInfo.length > 0 && adapterInfo !== 'unknown GPU adapter', adapterInfo);
    // After destroy(), reading back fails with an error naming the buffer rather than hanging.
    const buf = createStorage(device, new Float32Array([1, 2]), 'after-destroy');
    device.destroy();
    await assert.rejects(readBuffer(device, buf, 8), /after-destroy/);
  });
});

test('a lost device error tells the person to reload', () => {
  const e = new DeviceLostError('unknown', 'GPU process crashed');
  assert.match(e.message, /lost \(reason: unknown, GPU process crashed\).*Reload the page/);
});

test('acquireNodeDevice returns one cached device per process', async () => {
  const a = await acquireNodeDevice();
  const b = await acquireNodeDevice();
  assert.equal(a.device, b.device);
  assert.match(a.adapterInfo, /\S/);
});

test('Node with no Vulkan driver: NoWebGPUError says to install libvulkan1 and set VK_ICD_FILENAMES', async () => {
  const { spawnSync } = await import('node:child_process');
  const code = `const m = await import(${JSON.stringify(new URL('./node-device.ts', import.meta.url).href)});
    try { await m.acquireNodeDevice(); console.log('UNEXPECTED: got a device'); }
    catch (e) { console.log(e.name + ': ' + e.message); }`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    env: { ...process.env, VK_ICD_FILENAMES: '/nonexistent/icd.json', VK_DRIVER_FILES: '/nonexistent/icd.json' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.match(r.stdout, /NoWebGPUError: Node WebGPU \(Dawn\) found no GPU adapter/, r.stdout + r.stderr);
  assert.match(r.stdout, /libvulkan1/);
  assert.match(r.stdout, /VK_ICD_FILENAMES=\/usr\/lib\/chromium\/vk_swiftshader_icd\.json/);
});
