import { test } from 'node:test';
import assert from 'node:assert/strict';
import { registerShaders, shaderSource, shaderNames } from './shaders';
import { shaderFiles } from './node-shaders';
import { testDevice } from './gpu.test-helper';

test('every .wgsl (shaders/, src/compress/<family>/) is registered and compiles without errors or warnings', async () => {
  const device = await testDevice();
  const files = shaderFiles().map((f) => f.replace(/^.*\//, ''));
  assert.ok(files.length > 0, 'no shaders found');
  assert.deepEqual(shaderNames(), files.map((f) => f.replace(/\.wgsl$/, '')).sort());
  for (const name of shaderNames()) {
    const module = device.createShaderModule({ code: shaderSource(name), label: name });
    const info = await module.getCompilationInfo();
    const msgs = info.messages.map((m) => `${name}.wgsl:${m.lineNum}:${m.linePos} ${m.type}: ${m.message}`);
    assert.deepEqual(msgs, [], msgs.join('\n'));
  }
});

test('an unknown shader name is an error that lists the known ones', async () => {
  await testDevice();
  assert.throws(() => shaderSource('no-such-shader'), /unknown shader "no-such-shader"; known shaders: .*matmul/);
});

test('codec shaders live beside their codec; a shader name used twice is an error', async () => {
  await testDevice();
  const files = shaderFiles();
  for (const name of ['quant', 'topk', 'chunktop']) {
    assert.ok(
      files.some((f) => f.endsWith(`/src/compress/${name}/${name}.wgsl`)),
      `${name}.wgsl beside its codec`,
    );
  }
  assert.throws(
    () => registerShaders({ 'elsewhere/topk.wgsl': '' }),
    /shader name "topk" is taken twice: .*topk\.wgsl and elsewhere\/topk\.wgsl/,
  );
});
