// Matmul with f16 storage and f32 accumulation (shaders/half_matmul.wgsl): C (+)= op(A)·op(B) where B
// (the weights) and optionally A hold f16 values packed two per u32 (see half.ts), C is f32. Works on
// every adapter: the packed format is read with core WGSL (unpack2x16float), no 'shader-f16' needed.
// The result is the f32 matmul of the f16-rounded operands, so halfMatmulCpu is a float64 matmul of those.
import { createLaunch, requireBytes, requireDims, packUniform, type Binding, type Launch } from '../launch';
import type { MatmulShape } from './matmul';
import { halfWords, unpackHalf } from './half';

export interface HalfMatmulShape extends Pick<MatmulShape, 'M' | 'N' | 'K' | 'transA' | 'transB' | 'accumulate'> {
  /** A holds packed f16 (halfWords(M·K) words) instead of M·K f32. Default false. */
  halfA?: boolean;
  /** B holds packed f16 (halfWords(K·N) words) instead of K·N f32. Default true (the point of this launch). */
  halfB?: boolean;
}

export interface ResolvedHalfMatmulShape {
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  accumulate: boolean;
  halfA: boolean;
  halfB: boolean;
}

export function resolveHalfMatmulShape(s: HalfMatmulShape): ResolvedHalfMatmulShape {
  return {
    M: s.M,
    N: s.N,
    K: s.K,
    transA: Boolean(s.transA),
    transB: Boolean(s.transB),
    accumulate: Boolean(s.accumulate),
    halfA: s.halfA ?? false,
    halfB: s.halfB ?? true,
  };
}

/** Tile of C per workgroup (as the simple f32 matmul). */
export const HALF_MATMUL_TILE = 64;

/** Bytes each binding must span: packed operands take 4·halfWords(elements), f32 ones 4·elements. */
export function halfMatmulBytes(shape: HalfMatmulShape): { a: number; b: number; c: number } {
  const s = resolveHalfMatmulShape(shape);
  const bytes = (n: number, half: boolean) => 4 * (half ? halfWords(n) : n);
  return { a: bytes(s.M * s.K, s.halfA), b: bytes(s.K * s.N, s.halfB), c: 4 * s.M * s.N };
}

/**
 * Float64 reference: the operands as the kernel sees them (a packed operand is given as its u32
 * words and unpacked exactly; an f32 operand as its values), multiplied in float64 (as matmulCpu).
 */
export function halfMatmulCpu(
  shape: HalfMatmulShape,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  c?: ArrayLike<number>,
): Float64Array {
  const s = resolveHalfMatmulShape(shape);
  const { M, N, K } = s;
  const av = s.halfA ? unpackHalf(a, M * K) : a;
  const bv = s.halfB ? unpackHalf(b, K * N) : b;
  const out = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let acc = s.accumulate && c ? c[i * N + j] : 0;
      for (let k = 0; k < K; k++)
        acc += (s.transA ? av[k * M + i] : av[i * K + k]) * (s.transB ? bv[j * K + k] : bv[k * N + j]);
      out[i * N + j] = acc;
    }
  }
  return out;
}

/**
 * A launch computing C (+)= op(A)·op(B) with f32 accumulation; A (if halfA) and B (if halfB, the
 * default) packed f16, C f32. Any M, N, K >= 1 (packed rows may straddle words); any device.
 */
export function halfMatmulLaunch(
  device: GPUDevice,
  shape: HalfMatmulShape,
  b: { a: Binding; b: Binding; c: Binding },
): Launch {
  requireDims('half_matmul', { M: shape.M, N: shape.N, K: shape.K });
  const s = resolveHalfMatmulShape(shape);
  if (s.M * s.K > 2 ** 32 || s.K * s.N > 2 ** 32 || s.M * s.N > 2 ** 32) {
    throw new RangeError(`half_matmul: ${s.M}×${s.N}×${s.K} has operands past 2^32 elements (u32 indices)`);
  }
  const bytes = halfMatmulBytes(s);
  requireBytes(`half_matmul A (${s.halfA ? 'packed f16' : 'f32'})`, b.a, bytes.a);
  requireBytes(`half_matmul B (${s.halfB ? 'packed f16' : 'f32'})`, b.b, bytes.b);
  requireBytes('half_matmul C', b.c, bytes.c);
  return createLaunch(device, {
    shader: 'half_matmul',
    entry: 'half_matmul',
    constants: {
      TRANS_A: s.transA ? 1 : 0,
      TRANS_B: s.transB ? 1 : 0,
      ACCUMULATE: s.accumulate ? 1 : 0,
      HALF_A: s.halfA ? 1 : 0,
      HALF_B: s.halfB ? 1 : 0,
    },
    uniform: packUniform([s.M, s.N, s.K, 0]),
    bindings: { 1: b.a, 2: b.b, 3: b.c },
    workgroups: [Math.ceil(s.N / HALF_MATMUL_TILE), Math.ceil(s.M / HALF_MATMUL_TILE)],
  });
}
