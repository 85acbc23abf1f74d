import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../util/rng';
import type { CodecContext } from '../codec';
import {
  blockQuantCodec,
  quantizeNearest,
  quantizeStochastic,
  quantLevels,
  quantStep,
  type QuantBits,
  type Rounding,
} from './quant';
import { int8Codec } from '../int8/int8';
import { ErrorFeedback } from '../error-feedback';

const SIZES = [1, 7, 257, 1031, 65537];
const BITS: QuantBits[] = [8, 4, 2];
const CTX: CodecContext = { seed: 42, round: 3, stream: 1 };

/** Fresh random values whose magnitude varies over 6 decades between stretches of 100. */
function update(n: number, rng: Rng): Float32Array {
  const x = rng.uniformArray(n);
  for (let lo = 0; lo < n; lo += 100) {
    const s = 10 ** (-6 * rng.next());
    for (let i = lo; i < Math.min(n, lo + 100); i++) x[i] *= s;
  }
  return x;
}

function steps(bytes: Uint8Array, nb: number): number[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset);
  return Array.from({ length: nb }, (_, b) => dv.getFloat32(4 * b, true));
}

for (const bits of BITS) {
  for (const rounding of ['nearest', 'stochastic'] as Rounding[]) {
    const block = bits === 8 ? 64 : 100; // 100 does not divide 32/bits·k: blocks start mid-word
    const codec = blockQuantCodec({ bits, block, rounding });
    const L = quantLevels(bits);
    // nearest: half a step; stochastic: under one step; plus f32 roundings of x/s and q·s (<= 2L·2^-24 steps).
    const reach = (rounding === 'nearest' ? 0.5 : 1) + 2 * L * 2 ** -24;
    test(`${codec.name} round trip: exact size, steps maxabs/${L}, error <= ${rounding === 'nearest' ? 's/2' : 's'} for n in ${SIZES}`, () => {
      let worst = 0;
      for (const n of SIZES) {
        const x = update(n, new Rng(n * 10 + bits));
        const bytes = codec.encode(x, CTX);
        const nb = Math.ceil(n / block);
        assert.equal(bytes.length, 4 * nb + 4 * Math.ceil((n * bits) / 32), `n=${n}`);
        assert.equal(codec.encodedBytes(n), bytes.length);
        const s = steps(bytes, nb);
        for (let b = 0; b < nb; b++) {
          let maxabs = 0;
          for (let i = b * block; i < Math.min(n, (b + 1) * block); i++) maxabs = Math.max(maxabs, Math.abs(x[i]));
          assert.ok(Math.abs(s[b] - maxabs / L) <= 2 ** -23 * (maxabs / L), `block ${b}: step ${s[b]} vs maxabs/${L}`);
        }
        const y = codec.decode(bytes, n);
        for (let i = 0; i < n; i++) {
          const step = s[Math.floor(i / block)];
          const err = Math.abs(y[i] - x[i]);
          assert.ok(err <= step * reach, `n=${n} element ${i}: ${y[i]} vs ${x[i]}, step ${step}`);
          assert.ok(Math.abs(y[i]) <= L * step * (1 + 2 ** -23), 'within the block range');
          worst = Math.max(worst, err / step);
        }
      }
      // The bound is nearly attained (the worst error over ~67k values is close to it).
      assert.ok(worst > 0.9 * (reach - 2 * L * 2 ** -24), `worst error ${worst} steps`);
    });
  }
}

test('q8 with block 256 and nearest rounding is byte for byte the int8 codec', () => {
  const q8 = blockQuantCodec({ bits: 8, block: 256, rounding: 'nearest' });
  for (const n of [1, 257, 1031]) {
    const x = update(n, new Rng(70 + n));
    assert.deepEqual(q8.encode(x), int8Codec.encode(x));
    assert.deepEqual(q8.decode(q8.encode(x), n), int8Codec.decode(int8Codec.encode(x), n));
  }
});

test('2-bit codes are ternary {-1, 0, 1}·maxabs and the packing is 16 little-endian fields per word', () => {
  const q2 = blockQuantCodec({ bits: 2, block: 4, rounding: 'nearest' });
  const x = new Float32Array([0.8, -0.3, 0.41, -0.8, 0.1, 0.2, -0.26, 0.25]);
  const bytes = q2.encode(x);
  assert.deepEqual(steps(bytes, 2), [Math.fround(0.8), Math.fround(0.26)]);
  // codes: 1, 0 (0.375 < 0.5), 1 (0.5125 rounds up), -1 | 0, 1 (0.77), -1, 1 (0.96): 2-bit fields, low first.
  const codes = [1, 0, 1, -1, 0, 1, -1, 1];
  const word = new DataView(bytes.buffer).getUint32(8, true);
  assert.equal(word, codes.reduce((w, c, i) => w | ((c & 3) << (2 * i)), 0) >>> 0);
  assert.deepEqual(
    Array.from(q2.decode(bytes, 8)),
    codes.map((c, i) => Math.fround(c * (i < 4 ? Math.fround(0.8) : Math.fround(0.26)))),
  );
});

test('nearest rounding: exact ties go away from zero, just below a tie goes down; stochastic compares 24-bit uniforms', () => {
  for (const L of [1, 7, 127]) {
    for (let k = -L; k < L; k++) {
      const t = k + 0.5;
      assert.equal(quantizeNearest(t, 1, L), t < 0 ? -Math.ceil(-t) : Math.ceil(t), `tie ${t}`);
    }
    assert.equal(quantizeNearest(Math.fround(0.5 - 2 ** -25), 1, L), 0);
    assert.equal(quantizeNearest(L + 0.49, 1, L), L);
  }
  // t = 2.25: floor 2, frac 0.25 → up exactly when the top 24 bits of u are below 2^22.
  assert.equal(quantizeStochastic(2.25, 1, 7, ((1 << 22) - 1) * 256 + 255), 3);
  assert.equal(quantizeStochastic(2.25, 1, 7, (1 << 22) * 256), 2);
  assert.equal(quantizeStochastic(-2.25, 1, 7, 0), -2); // floor(-2.25) = -3, frac 0.75, u = 0 → up
  assert.equal(quantizeStochastic(-2.25, 1, 7, 0xffffffff), -3);
  assert.equal(quantizeStochastic(7, 1, 7, 0), 7);
  assert.equal(quantizeStochastic(0.3, 0, 7, 0), 0);
  assert.equal(quantStep(2 ** -101, 7), 0);
  assert.equal(quantStep(7, 7), Math.fround(7 * Math.fround(1 / 7)));
});

test('stochastic rounding is unbiased: the mean of 2000 rounds is within 5 sd (s/(2·sqrt(2000))·5) of x', () => {
  const R = 2000;
  const n = 101;
  for (const bits of BITS) {
    const codec = blockQuantCodec({ bits, block: 32, rounding: 'stochastic' });
    const x = update(n, new Rng(bits));
    const sum = new Float64Array(n);
    let s: number[] = [];
    for (let r = 0; r < R; r++) {
      const bytes = codec.encode(x, { seed: 7, round: r, stream: 0 });
      s = steps(bytes, codec.blocks(n));
      const y = codec.decode(bytes, n);
      for (let i = 0; i < n; i++) sum[i] += y[i];
    }
    let sq = 0;
    for (let i = 0; i < n; i++) {
      // Each rounding is a two-point variable one step wide: sd <= s/2, so the mean's sd <= s/(2·sqrt(R)).
      const sd = s[Math.floor(i / 32)] / (2 * Math.sqrt(R));
      const z = (sum[i] / R - x[i]) / sd;
      assert.ok(Math.abs(z) <= 5, `q${bits} element ${i}: mean ${sum[i] / R} vs ${x[i]} (${z.toFixed(2)} sd)`);
      sq += z * z;
    }
    // Overall: the normalized errors have RMS <= 1 when unbiased (a bias of 0.1 step would give ~9).
    assert.ok(Math.sqrt(sq / n) < 1.3, `q${bits}: RMS ${Math.sqrt(sq / n)} sd`);
  }
});

test('stochastic rounding is reproducible from the context and changes with round, stream and seed', () => {
  const codec = blockQuantCodec({ bits: 4, block: 64, rounding: 'stochastic' });
  const x = update(1031, new Rng(11));
  const a = codec.encode(x, CTX);
  assert.deepEqual(codec.encode(x, { ...CTX }), a);
  assert.notDeepEqual(codec.encode(x, { ...CTX, round: CTX.round + 1 }), a);
  assert.notDeepEqual(codec.encode(x, { ...CTX, stream: CTX.stream + 1 }), a);
  assert.notDeepEqual(codec.encode(x, { ...CTX, seed: CTX.seed + 1 }), a);
  const nearest = blockQuantCodec({ bits: 4, block: 64, rounding: 'nearest' });
  assert.deepEqual(nearest.encode(x, CTX), nearest.encode(x), 'nearest ignores the context');
  assert.throws(
    () => codec.encode(x),
    (e: unknown) => e instanceof RangeError && /q4-block64-stochastic encode: a codec context/.test(e.message),
  );
  assert.throws(
    () => codec.encode(x, { seed: 1, round: -2, stream: 0 }),
    /ctx\.round must be an integer in \[0, 4294967295\], got -2/,
  );
  assert.throws(() => nearest.decode(nearest.encode(x), 1031, { seed: 1, round: 0, stream: 0.5 }), /ctx\.stream/);
});

test('quantized encode rejects NaN and Inf naming the first bad element', () => {
  const codec = blockQuantCodec({ bits: 2, block: 64, rounding: 'nearest' });
  const x = update(300, new Rng(12));
  x[130] = NaN;
  x[200] = Infinity;
  assert.throws(() => codec.encode(x), /q2-block64-nearest encode: element 130 of 300 is NaN/);
  x[130] = 1;
  assert.throws(() => codec.encode(x), /element 200 of 300 is Infinity/);
});

test('quantized decode rejects wrong lengths, bad steps, the unused code and stray padding bits', () => {
  const codec = blockQuantCodec({ bits: 4, block: 100, rounding: 'nearest' });
  const x = update(257, new Rng(13));
  const bytes = codec.encode(x);
  assert.equal(bytes.length, 12 + 4 * 33);
  assert.throws(
    () => codec.decode(bytes.subarray(4), 257),
    (e: unknown) => e instanceof RangeError && /expected 144 bytes for 257 values, got 140/.test(e.message),
  );
  assert.throws(() => codec.decode(bytes, 300), /expected 164 bytes for 300 values, got 144/);
  const badStep = bytes.slice();
  new DataView(badStep.buffer).setFloat32(8, -1, true);
  assert.throws(() => codec.decode(badStep, 257), /block 2 has step -1/);
  const bad = bytes.slice();
  bad[12 + 2] = (bad[12 + 2] & 0xf0) | 0x8; // value 4 (low nibble of byte 2) → code -8
  assert.throws(() => codec.decode(bad, 257), /value 4 has code -8; codes lie in \[-7, 7\]/);
  const pad = bytes.slice();
  pad[pad.length - 1] |= 0x10; // the last word holds only value 256 (bits 0..3): set its bit 28
  assert.throws(() => codec.decode(pad, 257), /unused bits after value 256 must be 0/);
  assert.throws(
    () => blockQuantCodec({ bits: 3 as QuantBits, block: 8, rounding: 'nearest' }),
    /bits must be 2, 4 or 8, got 3/,
  );
  assert.throws(
    () => blockQuantCodec({ bits: 4, block: 0, rounding: 'nearest' }),
    /block must be an integer in \[1, 2\^31\], got 0/,
  );
  assert.throws(
    () => blockQuantCodec({ bits: 4, block: 8, rounding: 'up' as Rounding }),
    /rounding must be 'nearest' or 'stochastic', got up/,
  );
  assert.throws(() => codec.encodedBytes(-3), /non-negative integer, got -3/);
  // An unaligned view decodes the same.
  const shifted = new Uint8Array(bytes.length + 1);
  shifted.set(bytes, 1);
  assert.deepEqual(codec.decode(shifted.subarray(1), 257), codec.decode(bytes, 257));
  assert.deepEqual(codec.decode(codec.encode(new Float32Array(0)), 0), new Float32Array(0));
});

test('blocks of zeros or below 2^-100 have step 0 and decode to zeros', () => {
  const codec = blockQuantCodec({ bits: 2, block: 10, rounding: 'stochastic' });
  const x = update(25, new Rng(14));
  for (let i = 10; i < 20; i++) x[i] = 1e-31 * (i - 14.5);
  const bytes = codec.encode(x, CTX);
  assert.equal(steps(bytes, 3)[1], 0);
  const y = codec.decode(bytes, 25);
  for (let i = 10; i < 20; i++) assert.equal(y[i], 0);
});

/** Runs `rounds` rounds with (or without) error feedback, round r drawing from context round r. */
function runErrorFeedback(
  bits: QuantBits,
  rounding: Rounding,
  n: number,
  rounds: number,
  delta: (r: number) => Float32Array,
  withEf: boolean,
) {
  const block = 64;
  const codec = blockQuantCodec({ bits, block, rounding });
  const ef = new ErrorFeedback(codec, n);
  const given = new Float64Array(n);
  const sent = new Float64Array(n);
  let maxResidual = 0;
  let maxInput = 0;
  let maxStep = 0;
  /** Largest |residual| in units of the step of the round that produced it. */
  let residualSteps = 0;
  for (let r = 0; r < rounds; r++) {
    const ctx: CodecContext = { seed: 5, round: r, stream: 0 };
    const d = delta(r);
    const bytes = withEf ? ef.encode(d, ctx) : codec.encode(d, ctx);
    const s = steps(bytes, codec.blocks(n));
    const y = codec.decode(bytes, n, ctx);
    for (let i = 0; i < n; i++) {
      given[i] += d[i];
      sent[i] += y[i];
      maxInput = Math.max(maxInput, Math.abs(d[i]));
      maxResidual = Math.max(maxResidual, Math.abs(ef.residual[i]));
      residualSteps = Math.max(residualSteps, Math.abs(ef.residual[i]) / s[Math.floor(i / block)]);
    }
    maxStep = Math.max(maxStep, ...s);
  }
  let drift = 0;
  for (let i = 0; i < n; i++) drift = Math.max(drift, Math.abs(given[i] - sent[i]));
  return { drift, maxResidual, maxInput, maxStep, residualSteps, ef, given, sent };
}

test('error feedback keeps the sum of 2-bit updates within max|x| of the sum of inputs; without it the drift grows', () => {
  const n = 640;
  const rounds = 60;
  // A consistent signal (like a gradient direction) plus noise: ternary nearest rounding sends 0 for
  // every value under maxabs/2 each round, so without error feedback those never arrive.
  const rng = new Rng(15);
  const mean = rng.uniformArray(n, -1, 1);
  const delta = () => {
    const d = rng.uniformArray(n, -0.2, 0.2);
    for (let i = 0; i < n; i++) d[i] += mean[i];
    return d;
  };
  for (const rounding of ['nearest', 'stochastic'] as Rounding[]) {
    const run = runErrorFeedback(2, rounding, n, rounds, delta, true);
    // Each round's residual is that round's rounding error: <= s/2 (nearest), < s (stochastic).
    const reach = (rounding === 'nearest' ? 0.5 : 1) + 4 * 2 ** -24;
    assert.ok(run.residualSteps <= reach, `${rounding}: residual ${run.residualSteps} steps`);
    // Sum sent + residual = sum given, up to the f32 roundings of each round's d = delta + residual.
    const fp = rounds * 4 * 2 ** -24 * (run.maxInput + run.maxResidual);
    for (let i = 0; i < n; i++) {
      assert.ok(Math.abs(run.sent[i] + run.ef.residual[i] - run.given[i]) <= fp, `${rounding} element ${i}`);
    }
    if (rounding === 'nearest') {
      // |r| <= s/2 <= (max|x| + max|r|)/2 every round, so |r| <= max|x|: the drift of the sums is bounded.
      assert.ok(run.drift <= run.maxInput + fp, `nearest: drift ${run.drift} vs max|x| ${run.maxInput}`);
      const without = runErrorFeedback(2, rounding, n, rounds, delta, false);
      assert.ok(
        without.drift > 10 * run.drift,
        `without error feedback the drift is ${without.drift}, with it ${run.drift}`,
      );
    } else {
      // Stochastic rounding is unbiased already; error feedback keeps the drift under one step.
      assert.ok(run.drift <= run.maxStep * reach + fp, `stochastic: drift ${run.drift} vs largest step ${run.maxStep}`);
    }
  }
});
