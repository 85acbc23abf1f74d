// Uncompressed value codecs, also the value stage of the sparsifiers (topk.ts, randomk.ts):
//  - f32: each value as a little-endian f32, 4n bytes, exact.
//  - f16: IEEE binary16, round to nearest even (f32ToHalfBits from the GPU kernels' half.ts), two per
//    little-endian u32 word, element i in word i>>1, low half first (the layout of shaders/half.wgsl);
//    4·ceil(n/2) bytes, the unused high half of an odd n's last word is 0. Error per element:
//    <= 2^-11·|x| for |x| >= 2^-14, <= 2^-25 below (half an f16 subnormal step).
// Both refuse NaN and ±Inf on encode (f16 also values that would round to ±Inf, |x| >= 65520) and
// non-finite values in a payload on decode, with a RangeError naming the element.
import type { Codec, CodecContext } from '../codec';
import { checkContext } from '../prng';
import { f32ToHalfBits, halfBitsToF32 } from '../../util/half';

export function checkCount(n: number, who: string): void {
  if (!Number.isInteger(n) || n < 0)
    throw new RangeError(`${who}: element count must be a non-negative integer, got ${n}`);
}

export function checkLength(bytes: Uint8Array, expected: number, n: number, who: string): void {
  if (bytes.length !== expected) {
    throw new RangeError(`${who} decode: expected ${expected} bytes for ${n} values, got ${bytes.length}`);
  }
}

/** Throws a RangeError naming the first element of x that is NaN or ±Inf. */
export function checkFinite(x: Float32Array, who: string): void {
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) {
      throw new RangeError(`${who} encode: element ${i} of ${x.length} is ${x[i]}; only finite values can be encoded`);
    }
  }
}

export const f32Codec: Codec = {
  name: 'f32',
  fixedSize: true,

  encodedBytes(n: number): number {
    checkCount(n, 'f32 codec');
    return 4 * n;
  },

  encode(x: Float32Array, ctx?: CodecContext): Uint8Array {
    checkContext(ctx, 'f32 encode', false);
    checkFinite(x, 'f32');
    const out = new Uint8Array(4 * x.length);
    const dv = new DataView(out.buffer);
    for (let i = 0; i < x.length; i++) dv.setFloat32(4 * i, x[i], true);
    return out;
  },

  decode(bytes: Uint8Array, n: number, ctx?: CodecContext): Float32Array {
    checkContext(ctx, 'f32 decode', false);
    checkLength(bytes, this.encodedBytes(n), n, 'f32');
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const v = dv.getFloat32(4 * i, true);
      if (!Number.isFinite(v)) throw new RangeError(`f32 decode: value ${i} is ${v}; payload values must be finite`);
      out[i] = v;
    }
    return out;
  },
};

export const f16Codec: Codec = {
  name: 'f16',
  fixedSize: true,

  encodedBytes(n: number): number {
    checkCount(n, 'f16 codec');
    return 4 * Math.ceil(n / 2);
  },

  encode(x: Float32Array, ctx?: CodecContext): Uint8Array {
    checkContext(ctx, 'f16 encode', false);
    checkFinite(x, 'f16');
    const n = x.length;
    const out = new Uint8Array(this.encodedBytes(n));
    const dv = new DataView(out.buffer);
    for (let i = 0; i < n; i++) {
      const h = f32ToHalfBits(x[i]);
      if ((h & 0x7c00) === 0x7c00) {
        throw new RangeError(`f16 encode: element ${i} of ${n} is ${x[i]}, which rounds past the largest f16 (65504)`);
      }
      dv.setUint16(2 * i, h, true);
    }
    return out;
  },

  decode(bytes: Uint8Array, n: number, ctx?: CodecContext): Float32Array {
    checkContext(ctx, 'f16 decode', false);
    checkLength(bytes, this.encodedBytes(n), n, 'f16');
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const h = dv.getUint16(2 * i, true);
      if ((h & 0x7c00) === 0x7c00)
        throw new RangeError(
          `f16 decode: value ${i} has bits 0x${h.toString(16)} (Inf or NaN); payload values must be finite`,
        );
      out[i] = halfBitsToF32(h);
    }
    if (n % 2 === 1 && dv.getUint16(2 * n, true) !== 0) {
      throw new RangeError(
        `f16 decode: the padding half after value ${n - 1} must be 0, got 0x${dv.getUint16(2 * n, true).toString(16)}`,
      );
    }
    return out;
  },
};
