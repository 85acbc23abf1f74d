import { test, expect } from '@playwright/test';
import { startHarness } from './harness';
import { checkpointPaths, readModelCheckpoint } from '../coordinator/checkpoint';
import { DEMO_GPT_JOB } from '../cli/demo-jobs';
import { gptParamSpecs } from '../src/model/gpt-spec';

// The GPT through real donors: the job message carries the GPT config, the worker builds the GPT
// trainer and trains on sequences, the coordinator validates and checkpoints it. Kept short (the
// demo's tiny GPT, 2 rounds, 1 donor) so it runs in well under 40 s on a software GPU.
test('a GPT job trains through a real donor: validation loss falls and the checkpoint is a GPT', async () => {
  const h = await startHarness(
    { name: 'e2e-gpt', model: DEMO_GPT_JOB.model, train: { ...DEMO_GPT_JOB.train, rounds: 2, minDonors: 1 } },
    1,
  );
  try {
    const initial = await h.initialValLoss;
    const end = await h.ended;
    expect(end.outcome).toBe('done');
    expect(h.rounds.map((r) => r.accepted)).toEqual([1, 1]);
    expect(h.rounds[1].valLoss).toBeLessThan(initial * 0.95);
    const latest = checkpointPaths(h.server.dataDir, h.jobId).latest;
    const ck = await readModelCheckpoint(latest);
    expect(ck.cfg.type).toBe('gpt');
    expect(ck.metadata.version).toBe('2');
    if (ck.cfg.type === 'gpt') expect(ck.params.length).toBe(gptParamSpecs(ck.cfg).reduce((a, s) => a + s.size, 0));
  } finally {
    await h.close();
  }
});
