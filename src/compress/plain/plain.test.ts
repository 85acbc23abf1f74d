import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../util/rng';
import { f16Codec, f32Codec } from './plain';
import { ErrorFeedback } from '../error-feedback';
import { f32ToHalfBits, halfBitsToF32 } from '../../util/half';

const SIZES = [1, 2, 7, 257, 1031, 65537];

/** Fresh random values over several decades (some in the f16 subnormal range), never zeros. */
function values(n: number, rng: Rng): Float32Array {
  const x = rng.uniformArray(n);
  for (let i = 0; i < n; i++) x[i] *= 10 ** (4 - 10 * rng.next());
  return x;
}

for (const n of SIZES) {
  test(`f32 round trip n=${n}: 4n bytes, exact`, () => {
    const x = values(n, new Rng(n));
    const bytes = f32Codec.encode(x);
    assert.equal(bytes.length, 4 * n);
    assert.equal(f32Codec.encodedBytes(n), bytes.length);
    assert.deepEqual(f32Codec.decode(bytes, n), x);
    assert.deepEqual(f32Codec.encode(x), bytes, 'deterministic');
  });

  test(`f16 round trip n=${n}: 4·ceil(n/2) bytes, error <= 2^-11·|x| (normal) or 2^-25 (subnormal)`, () => {
    const x = values(n, new Rng(1000 + n));
    const bytes = f16Codec.encode(x);
    assert.equal(bytes.length, 4 * Math.ceil(n / 2));
    assert.equal(f16Codec.encodedBytes(n), bytes.length);
    const y = f16Codec.decode(bytes, n);
    let worst = 0;
    for (let i = 0; i < n; i++) {
      const bound = Math.abs(x[i]) >= 2 ** -14 ? 2 ** -11 * Math.abs(x[i]) : 2 ** -25;
      const err = Math.abs(y[i] - x[i]);
      assert.ok(err <= bound, `element ${i}: ${y[i]} vs ${x[i]}`);
      worst = Math.max(worst, err / bound);
      // The layout: element i is the (i mod 2) half of little-endian word i>>1.
      const word = new DataView(bytes.buffer).getUint32(4 * (i >> 1), true);
      assert.equal((word >>> (16 * (i & 1))) & 0xffff, f32ToHalfBits(x[i]));
    }
    if (n > 100) assert.ok(worst > 0.5, `the bound is attained to within 2x (worst ${worst})`);
  });
}

test('f16 rounds ties to even and keeps the largest finite value; values past it are refused', () => {
  const x = new Float32Array([1 + 2 ** -11, 1 + 3 * 2 ** -11, 65504, -65519, 2 ** -25, 3 * 2 ** -25]);
  const y = f16Codec.decode(f16Codec.encode(x), x.length);
  assert.deepEqual(Array.from(y), [1, 1 + 4 * 2 ** -11, 65504, -65504, 0, 4 * 2 ** -25]);
  assert.throws(
    () => f16Codec.encode(new Float32Array([1, 2, 65520])),
    /element 2 of 3 is 65520, which rounds past the largest f16/,
  );
});

test('plain codecs reject NaN and Inf on encode and in payloads, naming the element', () => {
  const x = new Float32Array([0.5, -0.25, NaN, Infinity]);
  assert.throws(() => f32Codec.encode(x), /f32 encode: element 2 of 4 is NaN/);
  assert.throws(() => f16Codec.encode(x), /f16 encode: element 2 of 4 is NaN/);
  x[2] = 1;
  assert.throws(() => f16Codec.encode(x), /element 3 of 4 is Infinity/);
  const b32 = f32Codec.encode(new Float32Array([1, 2, 3]));
  new DataView(b32.buffer).setFloat32(4, -Infinity, true);
  assert.throws(() => f32Codec.decode(b32, 3), /f32 decode: value 1 is -Infinity/);
  const b16 = f16Codec.encode(new Float32Array([1, 2, 3]));
  new DataView(b16.buffer).setUint16(4, 0x7e00, true);
  assert.throws(() => f16Codec.decode(b16, 3), /f16 decode: value 2 has bits 0x7e00/);
  new DataView(b16.buffer).setUint16(4, 0x3c00, true);
  assert.equal(halfBitsToF32(0x3c00), 1);
  new DataView(b16.buffer).setUint16(6, 1, true);
  assert.throws(() => f16Codec.decode(b16, 3), /padding half after value 2 must be 0/);
});

test('plain codecs reject wrong lengths, bad counts and bad contexts with RangeErrors', () => {
  const x = values(7, new Rng(5));
  assert.throws(
    () => f32Codec.decode(f32Codec.encode(x).subarray(1), 7),
    (e: unknown) => e instanceof RangeError && /expected 28 bytes for 7 values, got 27/.test(e.message),
  );
  assert.throws(() => f16Codec.decode(f16Codec.encode(x), 9), /f16 decode: expected 20 bytes for 9 values, got 16/);
  assert.throws(() => f32Codec.encodedBytes(-1), /non-negative integer, got -1/);
  assert.throws(() => f16Codec.encodedBytes(2.5), /non-negative integer, got 2\.5/);
  assert.throws(() => f32Codec.encode(x, { seed: -1, round: 0, stream: 0 }), /f32 encode: ctx\.seed/);
  assert.equal(f32Codec.encode(new Float32Array(0)).length, 0);
  assert.equal(f16Codec.decode(new Uint8Array(0), 0).length, 0);
});

test('error feedback with f16: everything sent plus the residual adds up to everything given', () => {
  const n = 1031;
  const rng = new Rng(8);
  const ef = new ErrorFeedback(f16Codec, n);
  const given = new Float64Array(n);
  const sent = new Float64Array(n);
  const rounds = 30;
  for (let r = 0; r < rounds; r++) {
    const delta = values(n, rng);
    const before = Float32Array.from(ef.residual);
    const y = f16Codec.decode(ef.encode(delta), n);
    for (let i = 0; i < n; i++) {
      given[i] += delta[i];
      sent[i] += y[i];
      // The residual is the f16 rounding error of d = f32(delta + residual): <= 2^-11·|d| or 2^-25.
      const d = Math.abs(delta[i]) + Math.abs(before[i]);
      assert.ok(
        Math.abs(ef.residual[i]) <= Math.max(2 ** -11 * d * (1 + 2 ** -23), 2 ** -25),
        `element ${i} round ${r}`,
      );
    }
  }
  for (let i = 0; i < n; i++) {
    const scale = Math.abs(given[i]) + Math.abs(sent[i]) + 1e4;
    assert.ok(Math.abs(sent[i] + ef.residual[i] - given[i]) <= rounds * 3 * 2 ** -24 * scale, `element ${i}`);
  }
});
