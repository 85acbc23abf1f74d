import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../util/rng';
import { int8Codec, int8Quantize, int8Scale, INT8_BLOCK } from './int8';
import { ErrorFeedback } from '../error-feedback';

const SIZES = [1, 255, 256, 257, 65536, 65537];

/** Values whose magnitude varies over 6 decades between blocks, so per-block scales matter. */
function update(n: number, rng: Rng): Float32Array {
  const x = rng.uniformArray(n);
  for (let b = 0; b * INT8_BLOCK < n; b++) {
    const s = 10 ** (-6 * rng.next());
    for (let i = b * INT8_BLOCK; i < Math.min(n, (b + 1) * INT8_BLOCK); i++) x[i] *= s;
  }
  return x;
}

function blockScales(bytes: Uint8Array, n: number): number[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset);
  return Array.from({ length: Math.ceil(n / INT8_BLOCK) }, (_, b) => dv.getFloat32(4 * b, true));
}

for (const n of SIZES) {
  test(`int8 round trip n=${n}: exact size, per-block scale, error <= scale/2`, () => {
    const x = update(n, new Rng(n));
    const bytes = int8Codec.encode(x);
    const blocks = Math.ceil(n / INT8_BLOCK);
    // 4 bytes per block scale + one byte per value rounded up to whole u32 words.
    assert.equal(bytes.length, 4 * blocks + 4 * Math.ceil(n / 4));
    assert.equal(int8Codec.encodedBytes(n), bytes.length);
    for (let p = 4 * blocks + n; p < bytes.length; p++) assert.equal(bytes[p], 0, `padding byte ${p}`);
    const scales = blockScales(bytes, n);
    const y = int8Codec.decode(bytes, n);
    for (let b = 0; b < blocks; b++) {
      let maxabs = 0;
      for (let i = b * INT8_BLOCK; i < Math.min(n, (b + 1) * INT8_BLOCK); i++)
        maxabs = Math.max(maxabs, Math.abs(x[i]));
      assert.ok(
        Math.abs(scales[b] - maxabs / 127) <= 2 ** -23 * (maxabs / 127),
        `block ${b} scale ${scales[b]} vs maxabs/127`,
      );
    }
    for (let i = 0; i < n; i++) {
      const s = scales[Math.floor(i / INT8_BLOCK)];
      // scale/2 from rounding, plus the f32 rounding of x/scale (<= 127.5·2^-24 in units of scale).
      const bound = s * (0.5 + 1e-5);
      assert.ok(Math.abs(y[i] - x[i]) <= bound, `element ${i}: ${y[i]} vs ${x[i]}, bound ${bound}`);
    }
  });
}

test('int8 rounds exact ties away from zero and never misrounds just below a tie', () => {
  assert.equal(int8Scale(127), 1, 'precondition: a block with maxabs 127 has scale exactly 1');
  for (let k = -127; k < 127; k++) {
    const x = k + 0.5;
    const want = x < 0 ? -Math.ceil(-x) : Math.ceil(x); // away from zero
    assert.equal(int8Quantize(x, 1), Math.max(-127, Math.min(127, want)), `tie ${x}`);
  }
  const below = Math.fround(0.5 - 2 ** -25); // floor(x + 0.5) in f32 would round this up to 1
  assert.equal(int8Quantize(below, 1), 0);
  assert.equal(int8Quantize(-below, 1), 0);
  assert.equal(int8Quantize(127.49, 1), 127);
  assert.equal(int8Quantize(-127.49, 1), -127);
});

test('int8 sends all-zero and subnormal-scale blocks as zeros', () => {
  const x = new Float32Array(300);
  for (let i = 256; i < 300; i++) x[i] = 1e-33 * (i - 280);
  const bytes = int8Codec.encode(x);
  assert.deepEqual(blockScales(bytes, 300), [0, 0]);
  assert.deepEqual(Array.from(int8Codec.decode(bytes, 300)), new Array(300).fill(0));
});

test('int8 encode rejects NaN and Inf naming the element', () => {
  const x = new Float32Array(600).fill(0.5);
  x[300] = NaN;
  assert.throws(() => int8Codec.encode(x), /element 300 of 600 is NaN; only finite values/);
  x[300] = 0;
  x[599] = -Infinity;
  assert.throws(() => int8Codec.encode(x), /element 599 of 600 is -Infinity/);
});

test('int8 decode rejects a wrong length, a bad scale and -128, naming what was wrong', () => {
  const bytes = int8Codec.encode(update(257, new Rng(3)));
  assert.throws(
    () => int8Codec.decode(bytes.subarray(1), 257),
    (e: unknown) => {
      return e instanceof RangeError && /expected 268 bytes for 257 values, got 267/.test(e.message);
    },
  );
  assert.throws(() => int8Codec.decode(bytes, 256), /expected 260 bytes for 256 values, got 268/);
  assert.throws(() => int8Codec.encodedBytes(-1), /non-negative integer, got -1/);
  const badScale = bytes.slice();
  new DataView(badScale.buffer).setFloat32(4, NaN, true);
  assert.throws(() => int8Codec.decode(badScale, 257), /block 1 has scale NaN/);
  const minus128 = bytes.slice();
  minus128[8 + 5] = 0x80;
  assert.throws(() => int8Codec.decode(minus128, 257), /value 5 is -128/);
});

test('int8 decodes from a view at an unaligned offset', () => {
  const x = update(257, new Rng(4));
  const bytes = int8Codec.encode(x);
  const shifted = new Uint8Array(bytes.length + 3);
  shifted.set(bytes, 3);
  assert.deepEqual(int8Codec.decode(shifted.subarray(3), 257), int8Codec.decode(bytes, 257));
});

test('error feedback: everything sent plus the residual adds up to everything given', () => {
  const n = 1000;
  const rng = new Rng(9);
  const ef = new ErrorFeedback(int8Codec, n);
  const given = new Float64Array(n);
  const sent = new Float64Array(n);
  let maxScale = 0;
  for (let round = 0; round < 20; round++) {
    const delta = update(n, rng);
    const bytes = ef.encode(delta);
    const y = int8Codec.decode(bytes, n);
    for (let i = 0; i < n; i++) {
      given[i] += delta[i];
      sent[i] += y[i];
    }
    maxScale = Math.max(maxScale, ...blockScales(bytes, n));
    // The residual never grows beyond half a quantization step of the round that produced it.
    const scales = blockScales(bytes, n);
    for (let i = 0; i < n; i++)
      assert.ok(Math.abs(ef.residual[i]) <= scales[Math.floor(i / INT8_BLOCK)] * (0.5 + 1e-5));
  }
  // Each of the 20 rounds adds f32 roundings of size <= 2^-24 · (|delta| + |residual| + |sent|) <= 2^-24 · 3.
  for (let i = 0; i < n; i++) {
    assert.ok(Math.abs(sent[i] + ef.residual[i] - given[i]) <= 20 * 3 * 2 ** -24, `element ${i}`);
  }
  assert.ok(maxScale > 0);
  const before = Float32Array.from(ef.residual);
  const bad = new Float32Array(n);
  bad[7] = NaN;
  assert.throws(() => ef.encode(bad), /element 7 of 1000 is NaN/);
  assert.deepEqual(ef.residual, before, 'a failed encode leaves the residual alone');
  assert.throws(() => ef.encode(new Float32Array(3)), /expected 1000 values, got 3/);
});
