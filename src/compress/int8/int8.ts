// Blockwise int8 codec: per block of 256 values one f32 scale = maxabs·f32(1/127), then each value
// as round(x/scale) in [-127, 127]. Layout: all block scales (f32, little-endian) first, then the
// int8 values in order, zero-padded to a multiple of 4 bytes (whole u32 words). Worst-case error per
// element: scale/2.
import type { Codec } from '../codec';

export const INT8_BLOCK = 256;
/** f32(1/127): the scale is a correctly rounded f32 multiply, so CPU and GPU agree on its bits. */
const INV127 = Math.fround(1 / 127);
/** Blocks whose maxabs is below 2^-100 are sent as zeros: GPUs may flush subnormal scales to 0. */
const TINY = 2 ** -100;

export function int8Blocks(n: number): number {
  return Math.ceil(n / INT8_BLOCK);
}

/** The f32 scale of a block whose largest magnitude is `maxabs`. */
export function int8Scale(maxabs: number): number {
  return maxabs < TINY ? 0 : Math.fround(maxabs * INV127);
}

/**
 * q = round_half_away_from_zero(f32(x / scale)) clamped to ±127 (0 when scale is 0). The fraction
 * test `a − floor(a) >= 0.5` is exact, unlike floor(a + 0.5) which misrounds just below 0.5.
 */
export function int8Quantize(x: number, scale: number): number {
  if (!(scale > 0)) return 0;
  const t = Math.fround(x / scale);
  const a = Math.abs(t);
  let r = Math.floor(a);
  if (a - r >= 0.5) r += 1;
  return (t < 0 ? -Math.min(r, 127) : Math.min(r, 127)) | 0;
}

function checkN(n: number): void {
  if (!Number.isInteger(n) || n < 0)
    throw new RangeError(`int8 codec: element count must be a non-negative integer, got ${n}`);
}

export const int8Codec: Codec = {
  name: 'int8-block256',
  fixedSize: true,

  encodedBytes(n: number): number {
    checkN(n);
    return 4 * int8Blocks(n) + 4 * Math.ceil(n / 4);
  },

  encode(x: Float32Array): Uint8Array {
    const n = x.length;
    const nb = int8Blocks(n);
    const out = new Uint8Array(this.encodedBytes(n));
    const dv = new DataView(out.buffer);
    const q = new Int8Array(out.buffer, 4 * nb, n);
    for (let b = 0; b < nb; b++) {
      const lo = b * INT8_BLOCK;
      const hi = Math.min(n, lo + INT8_BLOCK);
      let maxabs = 0;
      for (let i = lo; i < hi; i++) {
        const v = x[i];
        if (!Number.isFinite(v)) {
          throw new RangeError(`int8 encode: element ${i} of ${n} is ${v}; only finite values can be encoded`);
        }
        const a = Math.abs(v);
        if (a > maxabs) maxabs = a;
      }
      const scale = int8Scale(maxabs);
      dv.setFloat32(4 * b, scale, true);
      for (let i = lo; i < hi; i++) q[i] = int8Quantize(x[i], scale);
    }
    return out;
  },

  decode(bytes: Uint8Array, n: number): Float32Array {
    const expected = this.encodedBytes(n);
    if (bytes.length !== expected) {
      throw new RangeError(`int8 decode: expected ${expected} bytes for ${n} values, got ${bytes.length}`);
    }
    const nb = int8Blocks(n);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const q = new Int8Array(bytes.buffer, bytes.byteOffset + 4 * nb, n);
    const out = new Float32Array(n);
    for (let b = 0; b < nb; b++) {
      const scale = dv.getFloat32(4 * b, true);
      if (!(Number.isFinite(scale) && scale >= 0)) {
        throw new RangeError(`int8 decode: block ${b} has scale ${scale}; scales must be finite and >= 0`);
      }
      const lo = b * INT8_BLOCK;
      const hi = Math.min(n, lo + INT8_BLOCK);
      for (let i = lo; i < hi; i++) {
        if (q[i] === -128) throw new RangeError(`int8 decode: value ${i} is -128; encoded values lie in [-127, 127]`);
        out[i] = q[i] * scale;
      }
    }
    return out;
  },
};
