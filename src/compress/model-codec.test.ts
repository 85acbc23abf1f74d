import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../util/rng';
import { gptParamSpecs } from '../model/gpt-spec';
import type { Codec, CodecContext } from './codec';
import { ErrorFeedback } from './error-feedback';
import { int8Codec } from './int8/int8';
import { powerSgdCodec } from './powersgd/powersgd';
import { MODEL_CODEC_VERSION, modelCodec, powerSgdPolicy } from './model-codec';
import { modelCodecByName } from './codec-spec';
import { layoutOf } from './layout.test-helper';

/** 2-D tensors on both sides of the r·(rows+cols) < rows·cols rule for r = 2, and 1-D and 3-D ones. */
const MIXED = layoutOf([
  ['w', [13, 37]], // 2·50 < 481: PowerSGD
  ['b', [13]],
  ['thin', [3, 40]], // 2·43 = 86 < 120: PowerSGD
  ['thinner', [2, 40]], // 2·42 = 84 ≥ 80: fallback
  ['row', [1, 7]], // fallback
  ['cube', [2, 3, 4]], // not 2-D: fallback
  ['square', [4, 4]], // 2·8 = 16 ≥ 16: fallback (equality saves nothing)
  ['ln', [37]],
]);

const ctx = (round = 0, stream = 0): CodecContext => ({ seed: 77, round, stream });
const pad4 = (b: number) => 4 * Math.ceil(b / 4);

test('model codec routes each tensor: PowerSGD where r·(rows+cols) < rows·cols, the fallback elsewhere', () => {
  const mc = modelCodecByName('powersgd:2', MIXED);
  assert.deepEqual(
    mc.codecs.map((c) => c.name),
    [
      'powersgd-r2-13x37',
      'int8-block256',
      'powersgd-r2-3x40',
      'int8-block256',
      'int8-block256',
      'int8-block256',
      'int8-block256',
      'int8-block256',
    ],
  );
  assert.equal(mc.name, 'powersgd:2');
  assert.equal(mc.fixedSize, true);
  const gpt = gptParamSpecs({ vocab: 40, context: 16, layers: 2, heads: 2, width: 16, tiedEmbeddings: true });
  const g = modelCodecByName('powersgd:4', gpt);
  gpt.forEach((t, i) => {
    const [rows, cols] = t.shape;
    const low = t.shape.length === 2 && 4 * (rows + cols) < rows * cols;
    assert.equal(g.codecs[i].name.startsWith('powersgd-r4-'), low, t.name);
  });
  assert.ok(g.codecs.some((c) => c.name.startsWith('powersgd')) && g.codecs.some((c) => c === int8Codec));
});

test('model codec round trip: header, exact size, each tensor as its own codec would send it', () => {
  const rng = new Rng(1);
  const mc = modelCodecByName('powersgd:2', MIXED);
  const x = rng.uniformArray(mc.n);
  const c = ctx(5, 3);
  const bytes = mc.encode(x, c);
  // Size: 8 + Σ (4 + pad4(b_i)).
  const b = MIXED.map((t, i) =>
    i === 0 ? 4 * 2 * (13 + 37) : i === 2 ? 4 * 2 * (3 + 40) : int8Codec.encodedBytes(t.size),
  );
  assert.equal(bytes.length, 8 + b.reduce((a, v) => a + 4 + pad4(v), 0));
  assert.equal(mc.encodedBytes(mc.n), bytes.length);
  const dv = new DataView(bytes.buffer);
  assert.equal(dv.getUint32(0, true), MODEL_CODEC_VERSION);
  assert.equal(dv.getUint32(4, true), MIXED.length);
  const y = mc.decode(bytes, mc.n);
  let at = 8;
  MIXED.forEach((t, i) => {
    assert.equal(dv.getUint32(at, true), b[i], `length word of ${t.name}`);
    const part = bytes.subarray(at + 4, at + 4 + b[i]);
    const xi = x.subarray(t.offset, t.offset + t.size);
    // Tensor i draws from stream ctx.stream·T + i.
    const alone = t.name === 'w' || t.name === 'thin' ? powerSgdCodec(t.shape[0], t.shape[1], 2) : int8Codec;
    const want = alone.encode(xi, { seed: c.seed, round: c.round, stream: c.stream * MIXED.length + i });
    assert.deepEqual(part, want, `payload of ${t.name}`);
    assert.deepEqual(y.subarray(t.offset, t.offset + t.size), alone.decode(want, t.size), `decode of ${t.name}`);
    at += 4 + pad4(b[i]);
  });
  assert.equal(at, bytes.length);
});

/** Test-only fixed-size codec with a length that is not a multiple of 4: f32 values, then 0xa5. */
const oddCodec: Codec = {
  name: 'test-odd',
  fixedSize: true,
  encodedBytes: (n) => 4 * n + 1,
  encode(x) {
    const out = new Uint8Array(4 * x.length + 1);
    new Float32Array(out.buffer, 0, x.length).set(x);
    out[4 * x.length] = 0xa5;
    return out;
  },
  decode(bytes, n) {
    if (bytes.length !== 4 * n + 1 || bytes[4 * n] !== 0xa5)
      throw new RangeError(`test-odd: bad payload of ${bytes.length} bytes`);
    return new Float32Array(bytes.slice(0, 4 * n).buffer);
  },
};

/** Test-only variable-size codec: u32 count c, then the values up to the last nonzero (max 4 + 4n). */
const trimCodec: Codec = {
  name: 'test-trim',
  fixedSize: false,
  encodedBytes: (n) => 4 + 4 * n,
  encode(x) {
    let c = x.length;
    while (c > 0 && x[c - 1] === 0) c--;
    const out = new Uint8Array(4 + 4 * c);
    new DataView(out.buffer).setUint32(0, c, true);
    new Float32Array(out.buffer, 4, c).set(x.subarray(0, c));
    return out;
  },
  decode(bytes, n) {
    const c = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true);
    if (c > n || bytes.length !== 4 + 4 * c)
      throw new RangeError(`test-trim: header says ${c} values, payload has ${bytes.length} bytes`);
    const out = new Float32Array(n);
    out.set(new Float32Array(bytes.slice(4).buffer));
    return out;
  },
};

test('model codec pads odd tensor payloads to 4 bytes and checks the padding', () => {
  const layout = layoutOf([
    ['a', [3]],
    ['b', [2, 2]],
    ['c', [5]],
  ]);
  const mc = modelCodec(layout, { vector: oddCodec });
  const x = new Rng(2).uniformArray(12);
  const bytes = mc.encode(x);
  assert.equal(bytes.length, 8 + (4 + 16) + (4 + 20) + (4 + 24));
  assert.deepEqual(mc.decode(bytes, 12), x);
  const bad = bytes.slice();
  bad[8 + 4 + 13] = 1; // first padding byte after tensor a's 13 bytes
  assert.throws(() => mc.decode(bad, 12), /tensor 0 \(a\): padding byte 25 is 1, expected 0/);
});

test('model codec with a variable-size codec: maximum size, each length checked, nothing left over', () => {
  const layout = layoutOf([
    ['a', [6]],
    ['m', [3, 4]],
    ['c', [5]],
  ]);
  const mc = modelCodec(layout, { vector: trimCodec });
  assert.equal(mc.fixedSize, false);
  assert.equal(mc.encodedBytes(23), 8 + (4 + 28) + (4 + 52) + (4 + 24));
  const x = new Rng(3).uniformArray(23);
  x.fill(0, 3, 6); // tensor a sends 3 of its 6 values
  const bytes = mc.encode(x);
  assert.equal(bytes.length, 8 + (4 + 16) + (4 + 52) + (4 + 24));
  assert.deepEqual(mc.decode(bytes, 23), x);
  const longer = new Uint8Array(bytes.length + 4);
  longer.set(bytes);
  assert.throws(() => mc.decode(longer, 23), /4 bytes left over after 3 tensors \(112 used of 116\)/);
  const tooLong = bytes.slice();
  new DataView(tooLong.buffer).setUint32(8, 40, true);
  assert.throws(
    () => mc.decode(tooLong, 23),
    /tensor 0 \(a\): length 40 bytes, expected at most 28 for test-trim of 6 values/,
  );
  assert.throws(
    () => mc.decode(new Uint8Array(mc.encodedBytes(23) + 4), 23),
    /expected at most 124 bytes for 3 tensors \(23 parameters\), got 128/,
  );
});

test('model codec decode rejects a wrong total, version, tensor count or tensor length, naming sizes', () => {
  const mc = modelCodecByName('powersgd:2', MIXED);
  const bytes = mc.encode(new Rng(4).uniformArray(mc.n), ctx());
  const total = bytes.length;
  assert.throws(
    () => mc.decode(bytes.subarray(0, total - 4), mc.n),
    new RegExp(`expected ${total} bytes for 8 tensors \\(${mc.n} parameters\\), got ${total - 4}`),
  );
  assert.throws(
    () => mc.decode(bytes, mc.n + 1),
    new RegExp(`the layout has ${mc.n} parameters in 8 tensors, got n = ${mc.n + 1}`),
  );
  const v = bytes.slice();
  new DataView(v.buffer).setUint32(0, 2, true);
  assert.throws(() => mc.decode(v, mc.n), /version 2, expected 1/);
  const cnt = bytes.slice();
  new DataView(cnt.buffer).setUint32(4, 7, true);
  assert.throws(() => mc.decode(cnt, mc.n), /payload has 7 tensors, the layout has 8/);
  const len = bytes.slice();
  new DataView(len.buffer).setUint32(8, 396, true);
  assert.throws(
    () => mc.decode(len, mc.n),
    /tensor 0 \(w\): length 396 bytes, expected 400 for powersgd-r2-13x37 of 481 values/,
  );
  // A per-tensor codec's own error comes back naming the tensor.
  const nan = bytes.slice();
  new DataView(nan.buffer).setFloat32(8 + 4, NaN, true);
  assert.throws(() => mc.decode(nan, mc.n), /model codec: tensor 0 \(w\): powersgd decode: P\[0, 0\] is NaN/);
  assert.throws(() => mc.encodedBytes(3), /got n = 3/);
});

test('model codec encode: NaN and a missing ctx are caught before any warm start moves', () => {
  const mc = modelCodecByName('powersgd:2', MIXED);
  const x = new Rng(5).uniformArray(mc.n);
  assert.throws(() => mc.encode(x), /tensor 0 \(w\) uses powersgd-r2-13x37, which needs a ctx until started/);
  assert.equal(mc.started, false);
  x[MIXED[2].offset + 5] = NaN;
  assert.throws(
    () => mc.encode(x, ctx()),
    new RegExp(`tensor 2 \\(thin\\) element 5 \\(flat ${MIXED[2].offset + 5}\\) is NaN`),
  );
  assert.equal(mc.started, false, 'the failed encode drew nothing');
  x[MIXED[2].offset + 5] = 0.5;
  // start(ctx) = what the first encode with that ctx would draw; later encodes need no ctx; reset forgets.
  const a = modelCodecByName('powersgd:2', MIXED);
  mc.start(ctx(0, 1));
  assert.equal(mc.started, true);
  assert.deepEqual(mc.encode(x), a.encode(x, ctx(0, 1)));
  assert.deepEqual(mc.encode(x), a.encode(x));
  mc.reset();
  assert.equal(mc.started, false);
  assert.throws(() => mc.encode(x), /needs a ctx until started/);
});

test('model codec rejects bad layouts and shared stateful codecs', () => {
  const good = layoutOf([
    ['a', [2, 3]],
    ['b', [4]],
  ]);
  assert.throws(
    () => modelCodec([good[0], { ...good[1], offset: 7 }], { vector: int8Codec }),
    /tensor 1 \(b\): offset 7, expected 6/,
  );
  assert.throws(
    () => modelCodec([{ ...good[0], size: 5 }, good[1]], { vector: int8Codec }),
    /size 5 is not the product of shape \[2, 3\] = 6/,
  );
  assert.throws(
    () => modelCodec([good[0], { ...good[1], name: 'a' }], { vector: int8Codec }),
    /tensor 1 \(a\): duplicate name/,
  );
  const shared = powerSgdCodec(2, 3, 1);
  const two = layoutOf([
    ['a', [2, 3]],
    ['b', [2, 3]],
  ]);
  assert.throws(
    () => modelCodec(two, { matrix: () => shared, vector: int8Codec }),
    /same stateful codec for two tensors/,
  );
  assert.throws(() => modelCodec(two, { vector: powerSgdCodec(2, 3, 1) }), /vector codec powersgd-r1-2x3 is stateful/);
  assert.throws(() => powerSgdPolicy(0, int8Codec), /rank must be a positive integer, got 0/);
  // A matrix codec for the wrong shape is caught when the model codec is built, naming the tensor.
  assert.throws(
    () => modelCodec(two, { matrix: () => powerSgdCodec(3, 3, 1), vector: int8Codec }),
    /tensor 0 \(a\): powersgd encodedBytes: this codec is for a 3 × 3 matrix \(9 values\), got n = 6/,
  );
});

test('modelCodecByName: int8 and powersgd:R; bad names list the accepted forms', () => {
  const i8 = modelCodecByName('int8', MIXED);
  assert.ok(i8.codecs.every((c) => c === int8Codec));
  const x = new Rng(6).uniformArray(i8.n);
  const y = i8.decode(i8.encode(x), i8.n);
  MIXED.forEach((t) => {
    assert.deepEqual(
      y.subarray(t.offset, t.offset + t.size),
      int8Codec.decode(int8Codec.encode(x.subarray(t.offset, t.offset + t.size)), t.size),
    );
  });
  // The full grammar and its messages are tested in codec-spec.test.ts.
  for (const bad of [
    'topk:0',
    'f32:sr',
    'powersgd',
    'powersgd:0',
    'powersgd:1.5',
    'powersgd:x',
    'INT8',
    'toString',
    '',
  ]) {
    assert.throws(
      () => modelCodecByName(bad, MIXED),
      (e: unknown) =>
        e instanceof RangeError &&
        e.message.startsWith(`codec ${JSON.stringify(bad)}: `) &&
        e.message.includes('; accepted forms: f32 | f16 | int8'),
      bad,
    );
  }
});

test('error feedback over the model codec: sent plus residual equals given, at a fraction of f32 size', () => {
  const gpt = gptParamSpecs({ vocab: 40, context: 16, layers: 1, heads: 2, width: 16, tiedEmbeddings: true });
  const mc = modelCodecByName('powersgd:2', gpt);
  mc.start(ctx());
  const ef = new ErrorFeedback(mc, mc.n);
  const rng = new Rng(7);
  const given = new Float64Array(mc.n);
  const sent = new Float64Array(mc.n);
  const slack = new Float64Array(mc.n);
  for (let t = 0; t < 8; t++) {
    const delta = rng.uniformArray(mc.n);
    const before = Float64Array.from(ef.residual);
    const bytes = ef.encode(delta);
    assert.equal(bytes.length, mc.encodedBytes(mc.n));
    const y = mc.decode(bytes, mc.n);
    for (let i = 0; i < mc.n; i++) {
      given[i] += delta[i];
      sent[i] += y[i];
      slack[i] += 2 ** -24 * (Math.abs(delta[i] + before[i]) + Math.abs(ef.residual[i])) * 1.001;
    }
  }
  for (let i = 0; i < mc.n; i++) assert.ok(Math.abs(sent[i] + ef.residual[i] - given[i]) <= slack[i], `element ${i}`);
  assert.ok(mc.encodedBytes(mc.n) < mc.n, `${mc.encodedBytes(mc.n)} bytes for ${mc.n} parameters`);
});
