// Blockwise int8 quantize / dequantize on the GPU, byte-identical in layout to src/compress/int8/int8.ts;
// see src/compress/int8/int8.wgsl. The output buffer holds int8Words(n) u32 words = int8Codec.encodedBytes(n).
import { int8Blocks } from './int8';
import { createLaunch, requireBytes, requireDims, packUniform, type Binding, type Launch, type LaunchOptions } from '../../gpu/launch';

export function int8Words(n: number): number {
  return int8Blocks(n) + Math.ceil(n / 4);
}

export function quantizeLaunch(device: GPUDevice, n: number, b: { x: Binding; out: Binding }, opts: LaunchOptions = {}): Launch {
  requireDims('quantize_int8', { n });
  requireBytes('quantize_int8 x', b.x, 4 * n);
  requireBytes('quantize_int8 out', b.out, 4 * int8Words(n));
  return createLaunch(device, {
    shader: 'int8',
    entry: 'quantize_int8',
    uniform: packUniform([n, int8Blocks(n)]),
    bindings: { 1: b.x, 2: b.out },
    workgroups: int8Blocks(n),
    ...opts,
  });
}

/** Encodes d = (base − local) + residual and sets residual ← d − decode(encoded) (error feedback). */
export function quantizeErrorFeedbackLaunch(
  device: GPUDevice,
  n: number,
  b: { base: Binding; local: Binding; residual: Binding; out: Binding },
  opts: LaunchOptions = {},
): Launch {
  requireDims('quantize_int8_ef', { n });
  for (const k of ['base', 'local', 'residual'] as const) requireBytes(`quantize_int8_ef ${k}`, b[k], 4 * n);
  requireBytes('quantize_int8_ef out', b.out, 4 * int8Words(n));
  return createLaunch(device, {
    shader: 'int8',
    entry: 'quantize_int8_ef',
    uniform: packUniform([n, int8Blocks(n)]),
    bindings: { 2: b.out, 3: b.base, 4: b.local, 5: b.residual },
    workgroups: int8Blocks(n),
    ...opts,
  });
}

export function dequantizeLaunch(device: GPUDevice, n: number, b: { packed: Binding; y: Binding }, opts: LaunchOptions = {}): Launch {
  requireDims('dequantize_int8', { n });
  requireBytes('dequantize_int8 packed', b.packed, 4 * int8Words(n));
  requireBytes('dequantize_int8 y', b.y, 4 * n);
  return createLaunch(device, {
    shader: 'int8',
    entry: 'dequantize_int8',
    uniform: packUniform([n, int8Blocks(n)]),
    bindings: { 6: b.packed, 7: b.y },
    workgroups: Math.ceil(n / 4 / 64),
    ...opts,
  });
}

