// Embedding forward is a copy, so it must match exactly. The backward sums at most B·k terms per
// element in position order; bound count·2^-23·Σ|terms|, the f32 summation error with margin 2.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../util/rng';
import { createStorage } from '../buffers';
import { testDevice, poisoned, run, readF32, assertClose } from '../gpu.test-helper';
import {
  embeddingForwardCpu,
  embeddingBackwardCpu,
  embeddingForwardLaunch,
  embeddingBackwardLaunch,
  type EmbeddingDims,
} from './embedding';

const CASES: EmbeddingDims[] = [
  { batch: 1, context: 1, dim: 1, vocab: 2 },
  { batch: 13, context: 3, dim: 5, vocab: 7 },
  { batch: 67, context: 4, dim: 17, vocab: 29 },
  { batch: 5, context: 2, dim: 257, vocab: 3 },
];

function tokensFor(d: EmbeddingDims, rng: Rng): Int32Array {
  return Int32Array.from({ length: d.batch * d.context }, () => rng.int(d.vocab));
}

test('embedding forward copies the rows of each token exactly', async () => {
  const device = await testDevice();
  const rng = new Rng(11);
  for (const d of CASES) {
    const tokens = tokensFor(d, rng);
    const table = rng.uniformArray(d.vocab * d.dim);
    const T = createStorage(device, tokens);
    const W = createStorage(device, table);
    const X = poisoned(device, d.batch * d.context * d.dim);
    await run(device, [embeddingForwardLaunch(device, d, { tokens: T, table: W, x: X })]);
    assertClose(
      `x ${JSON.stringify(d)}`,
      await readF32(device, X, d.batch * d.context * d.dim),
      embeddingForwardCpu(d, tokens, table),
      0,
    );
    [T, W, X].forEach((b) => b.destroy());
  }
});

test('embedding backward sums the gradient of every position into its token row', async () => {
  const device = await testDevice();
  const rng = new Rng(12);
  for (const d of CASES) {
    const tokens = tokensFor(d, rng);
    const dx = rng.uniformArray(d.batch * d.context * d.dim);
    const T = createStorage(device, tokens);
    const DX = createStorage(device, dx);
    const G = poisoned(device, d.vocab * d.dim);
    await run(device, [embeddingBackwardLaunch(device, d, { tokens: T, dx: DX, dtable: G })]);
    const absSum = embeddingBackwardCpu(d, tokens, dx.map(Math.abs));
    const count = d.batch * d.context;
    assertClose(
      `dtable ${JSON.stringify(d)}`,
      await readF32(device, G, d.vocab * d.dim),
      embeddingBackwardCpu(d, tokens, dx),
      (i) => count * 2 ** -23 * absSum[i],
    );
    [T, DX, G].forEach((b) => b.destroy());
  }
});

test('embedding launches reject a zero dimension', async () => {
  const device = await testDevice();
  const B = createStorage(device, 64);
  assert.throws(
    () => embeddingForwardLaunch(device, { batch: 1, context: 1, dim: 0, vocab: 2 }, { tokens: B, table: B, x: B }),
    /embedding: dim must be an integer >= 1, got 0/,
  );
  B.destroy();
});
