// Encoder forward is one f32 addition per element: it must equal the f32 rounding of the exact sum.
// The backward sums `count` terms per element (positions holding that token, or batch rows), in
// ascending order; bound (count + 1)·2u·Σ|terms| (+ |old| with accumulate), the f32 summation error
// with margin 2. Shapes cover 1, primes, C > 256 (several column blocks per vocab row) and B·T > 256
// (several 256-position chunks of the token scan); one vocab row is never used (its gradient is 0).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../util/rng';
import { createStorage } from '../buffers';
import { testDevice, poisoned, run, readF32, assertClose, U32 as u } from '../gpu.test-helper';
import {
  encoderForwardCpu,
  encoderBackwardCpu,
  encoderForwardLaunch,
  encoderBackwardWteLaunch,
  encoderBackwardWpeLaunch,
  type EncoderDims,
} from './encoder';

const CASES: EncoderDims[] = [
  { batch: 1, seq: 1, channels: 1, vocab: 2 },
  { batch: 3, seq: 7, channels: 5, vocab: 11 },
  { batch: 5, seq: 67, channels: 13, vocab: 29 },
  { batch: 2, seq: 3, channels: 257, vocab: 3 },
];

function tokensFor(d: EncoderDims, rng: Rng): Int32Array {
  // Token vocab-1 is never used, so its row must come out exactly 0 (or unchanged with accumulate).
  return Int32Array.from({ length: d.batch * d.seq }, () => rng.int(Math.max(1, d.vocab - 1)));
}

test('encoder forward adds the token and position embeddings', async () => {
  const device = await testDevice();
  const rng = new Rng(51);
  for (const d of CASES) {
    const maxT = d.seq + 2; // wpe holds more rows than are used
    const tokens = tokensFor(d, rng);
    const wte = rng.uniformArray(d.vocab * d.channels);
    const wpe = rng.uniformArray(maxT * d.channels);
    const T = createStorage(device, tokens);
    const WTE = createStorage(device, wte);
    const WPE = createStorage(device, wpe);
    const n = d.batch * d.seq * d.channels;
    const OUT = poisoned(device, n);
    await run(device, [encoderForwardLaunch(device, d, { tokens: T, wte: WTE, wpe: WPE, out: OUT })]);
    const want = Float32Array.from(encoderForwardCpu(d, tokens, wte, wpe));
    assertClose(`out ${JSON.stringify(d)}`, await readF32(device, OUT, n), want, 0);
    [T, WTE, WPE, OUT].forEach((b) => b.destroy());
  }
});

for (const accumulate of [false, true]) {
  test(`encoder backward gathers dwte by token and dwpe over the batch${accumulate ? ' (accumulate)' : ''}`, async () => {
    const device = await testDevice();
    const rng = new Rng(accumulate ? 53 : 52);
    for (const d of CASES) {
      const tokens = tokensFor(d, rng);
      const dout = rng.uniformArray(d.batch * d.seq * d.channels);
      const oldWte = rng.uniformArray(d.vocab * d.channels);
      const oldWpe = rng.uniformArray(d.seq * d.channels);
      const T = createStorage(device, tokens);
      const DOUT = createStorage(device, dout);
      const DWTE = accumulate ? createStorage(device, oldWte) : poisoned(device, d.vocab * d.channels);
      const DWPE = accumulate ? createStorage(device, oldWpe) : poisoned(device, d.seq * d.channels);
      // The 29-row vocab folds its grid into 2-D (6×5 workgroups for 29; the surplus one exits).
      const fold = d.vocab === 29 ? { maxWorkgroupsPerDim: 6 } : {};
      await run(device, [
        encoderBackwardWteLaunch(device, d, { tokens: T, dout: DOUT, dwte: DWTE }, { accumulate, ...fold }),
        encoderBackwardWpeLaunch(device, d, { dout: DOUT, dwpe: DWPE }, { accumulate }),
      ]);
      const ref = encoderBackwardCpu(d, tokens, dout);
      const abs = encoderBackwardCpu(d, tokens, dout.map(Math.abs));
      const count = new Float64Array(d.vocab);
      tokens.forEach((t) => count[t]++);
      if (accumulate) {
        ref.dwte.forEach((_, i) => (ref.dwte[i] += oldWte[i]));
        ref.dwpe.forEach((_, i) => (ref.dwpe[i] += oldWpe[i]));
      }
      const old = (a: Float32Array, i: number) => (accumulate ? Math.abs(a[i]) : 0);
      const tag = JSON.stringify(d);
      const gotWte = await readF32(device, DWTE, d.vocab * d.channels);
      assertClose(`dwte ${tag}`, gotWte, ref.dwte, (i) => {
        const k = count[Math.floor(i / d.channels)];
        return (k + 1) * 2 * u * (abs.dwte[i] + old(oldWte, i));
      });
      assertClose(
        `dwpe ${tag}`,
        await readF32(device, DWPE, d.seq * d.channels),
        ref.dwpe,
        (i) => (d.batch + 1) * 2 * u * (abs.dwpe[i] + old(oldWpe, i)),
      );
      // The unused vocab row: exactly 0, or exactly its old value.
      const last = (d.vocab - 1) * d.channels;
      for (let c = 0; c < d.channels; c++) assert.equal(gotWte[last + c], accumulate ? oldWte[last + c] : 0);
      [T, DOUT, DWTE, DWPE].forEach((b) => b.destroy());
    }
  });
}

test('encoder launches check their buffers', async () => {
  const device = await testDevice();
  const small = createStorage(device, 16);
  const d: EncoderDims = { batch: 2, seq: 3, channels: 5, vocab: 7 };
  assert.throws(
    () => encoderForwardLaunch(device, d, { tokens: small, wte: small, wpe: small, out: small }),
    /encoder tokens needs 24 bytes, its binding has 16/,
  );
  assert.throws(
    () => encoderForwardLaunch(device, { ...d, seq: 0 }, { tokens: small, wte: small, wpe: small, out: small }),
    /seq must be/,
  );
  small.destroy();
});
