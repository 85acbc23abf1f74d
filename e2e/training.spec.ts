import { test, expect } from '@playwright/test';
import { startHarness } from './harness';

test('two headless donors train the default job over WebRTC and validation loss falls', async () => {
  const h = await startHarness({ name: 'e2e-train', train: { rounds: 6, minDonors: 2 } }, 2);
  try {
    const initial = await h.initialValLoss;
    const end = await h.ended;
    expect(end.outcome).toBe('done');
    expect(h.rounds.length).toBe(6);
    for (const r of h.rounds) expect(r.accepted).toBe(2);
    const final = h.rounds[h.rounds.length - 1].valLoss;
    expect(final).toBeLessThan(initial * 0.9);
    // Bytes crossed the data channels both ways in every round.
    for (const r of h.rounds) {
      expect(r.bytesUp).toBeGreaterThan(0);
      expect(r.bytesDown).toBeGreaterThan(0);
    }
  } finally {
    await h.close();
  }
});

// The donor's update encoded by the GPU kernels (src/sync/gpu-encoder.ts) and by the CPU codec: the same
// job, seed and single donor give the same bytes, so the same weights and validation loss every round.
test('a donor encoding on the GPU and one encoding on the CPU train the default job identically', async () => {
  const run = async (encode: 'gpu' | 'cpu') => {
    const h = await startHarness({ name: `e2e-encode-${encode}`, train: { rounds: 3, minDonors: 1, shards: 1 } }, 1, {
      encode,
    });
    try {
      expect((await h.ended).outcome).toBe('done');
      // The page says where its last update was encoded: the switch reached the worker.
      expect(await h.fleet.donors[0].page.evaluate(() => document.body.dataset.encodedOn)).toBe(encode);
      return h.rounds.map((r) => ({ val: r.valLoss, up: r.bytesUp }));
    } finally {
      await h.close();
    }
  };
  const gpu = await run('gpu');
  const cpu = await run('cpu');
  expect(gpu).toHaveLength(3);
  expect(gpu).toEqual(cpu);
  expect(gpu[2].val).toBeLessThan(gpu[0].val);
});
