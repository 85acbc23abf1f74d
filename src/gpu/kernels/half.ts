// f16 storage: IEEE binary16 values packed two per u32 word (element i in word i>>1, low half first),
// read and written with core WGSL only, so it works on every adapter ('shader-f16' not needed). All
// arithmetic stays f32. See shaders/half.wgsl for the GPU casts and docs/KERNELS.md ("f16 storage").
//
// The CPU references (exact f32 ↔ f16 conversions and packing) are in src/util/half.ts, below both
// this kernel and the f16 codec; they are re-exported here for the kernel's callers.
import {
  createLaunch,
  requireBytes,
  requireDims,
  packUniform,
  type Binding,
  type Launch,
  type LaunchOptions,
} from '../launch';
import { halfWords } from '../../util/half';

export {
  HALF_MAX,
  halfWords,
  f32Bits,
  f32FromBits,
  f32ToHalfBits,
  f32ToHalfBitsSaturate,
  f32BitsToHalf,
  halfBitsToF32,
  halfBitsToF32Bits,
  roundToHalf,
  packHalf,
  unpackHalf,
} from '../../util/half';

/**
 * Packs n f32 values of `src` into `dst` (halfWords(n) u32 words) as f16, round to nearest even,
 * saturating at ±65504, NaN kept (see f32ToHalfBitsSaturate). `dst` must not alias `src`.
 */
export function f32ToHalfLaunch(
  device: GPUDevice,
  n: number,
  b: { src: Binding; dst: Binding },
  opts: LaunchOptions = {},
): Launch {
  requireDims('f32_to_half', { n });
  requireBytes('f32_to_half src', b.src, 4 * n);
  requireBytes('f32_to_half dst', b.dst, 4 * halfWords(n));
  return createLaunch(device, {
    shader: 'half',
    entry: 'f32_to_half',
    uniform: packUniform([n]),
    bindings: { 1: b.src, 2: b.dst },
    workgroups: Math.ceil(halfWords(n) / 256),
    ...opts,
  });
}

/** Unpacks n f16 values of `src` (halfWords(n) words) into n f32 of `dst`, exactly. `dst` must not alias `src`. */
export function halfToF32Launch(
  device: GPUDevice,
  n: number,
  b: { src: Binding; dst: Binding },
  opts: LaunchOptions = {},
): Launch {
  requireDims('half_to_f32', { n });
  requireBytes('half_to_f32 src', b.src, 4 * halfWords(n));
  requireBytes('half_to_f32 dst', b.dst, 4 * n);
  return createLaunch(device, {
    shader: 'half',
    entry: 'half_to_f32',
    uniform: packUniform([n]),
    bindings: { 1: b.src, 2: b.dst },
    workgroups: Math.ceil(halfWords(n) / 256),
    ...opts,
  });
}
