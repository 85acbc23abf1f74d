import { test, expect } from '@playwright/test';
import { startHarness } from './harness';

test('a third donor that joins mid-job catches up and contributes', async () => {
  const h = await startHarness({ name: 'e2e-join', train: { rounds: 8, minDonors: 2 } }, 2);
  try {
    await h.waitForRound((r) => r.round >= 1, 'two rounds with the first donors');
    const third = await h.fleet.add();
    const joined = await h.waitForRound((r) => r.donors.includes(third.id), `a round with ${third.id}'s update`);
    expect(joined.round).toBeGreaterThanOrEqual(2);
    expect(joined.accepted).toBe(3);
    // Its update was accepted against the current version, so it had caught up to the global weights.
    const end = await h.ended;
    expect(end.outcome).toBe('done');
  } finally {
    await h.close();
  }
});

test('a donor closed mid-round stalls the round no longer than its deadline', async () => {
  const deadline = 8000;
  // A heartbeat timeout well under the deadline: the coordinator gives the vanished donor up by its
  // silence, not by missed deadlines (with both at 8 s the two race, and a round can start with it).
  const h = await startHarness(
    { name: 'e2e-vanish', train: { rounds: 8, minDonors: 1, roundDeadlineMs: deadline } },
    2,
    { heartbeat: { intervalMs: 500, timeoutMs: 2500 } },
  );
  try {
    await h.waitForRound((r) => r.accepted === 2, 'a round with both donors');
    // Close donor 1 while the next round is in flight: wait until it has been assigned.
    const page = h.fleet.donors[1].page;
    await page.waitForFunction(() => document.body.dataset.state === 'training', undefined, { timeout: 60_000 });
    const at = h.rounds.length;
    await h.fleet.remove(1);
    // The coordinator may not learn at once that the page is gone (WebRTC close detection varies); its
    // heartbeat gives the donor up after 2.5 s of silence. No round may wait longer than its deadline
    // meanwhile, and training goes on with the remaining donor.
    const settled = await h.waitForRound(
      (r) => h.rounds.indexOf(r) >= at && r.assigned === 1 && r.accepted === 1,
      'a round with only the remaining donor',
    );
    for (const r of h.rounds.slice(at, h.rounds.indexOf(settled) + 1)) {
      expect(r.endedAt - r.startedAt).toBeLessThanOrEqual(deadline + 2000);
    }
    expect(h.rounds.indexOf(settled) - at).toBeLessThanOrEqual(2);
  } finally {
    await h.close();
  }
});

test('a reloaded donor resumes from its IndexedDB cache without downloading its shard again', async () => {
  const h = await startHarness({ name: 'e2e-reload', train: { rounds: 8, minDonors: 1 } }, 1);
  try {
    const id = h.fleet.donors[0].id;
    await h.waitForRound((r) => r.donors.includes(id), 'a first round');
    expect(h.server.counters.shardDownloads).toBe(1);
    const at = h.rounds.length;
    await h.fleet.donors[0].page.reload();
    const again = await h.waitForRound(
      (r) => h.rounds.indexOf(r) >= at && r.donors.includes(id),
      'a round after the reload',
    );
    expect(again.accepted).toBe(1);
    expect(h.server.counters.shardDownloads).toBe(1);
  } finally {
    await h.close();
  }
});

test('the fleet reopens a donor page that crashes, and the donor trains again', async () => {
  const h = await startHarness({ name: 'e2e-crash', train: { rounds: 8, minDonors: 1 } }, 1);
  try {
    const id = h.fleet.donors[0].id;
    await h.waitForRound((r) => r.donors.includes(id), 'a first round');
    const at = h.rounds.length;
    const cdp = await h.fleet.donors[0].context.newCDPSession(h.fleet.donors[0].page);
    void cdp.send('Page.crash').catch(() => {}); // the session dies with the renderer
    await h.fleet.waitForRestarts(0, 1);
    expect(h.fleet.donors[0].restarts).toBe(1);
    const again = await h.waitForRound(
      (r) => h.rounds.indexOf(r) >= at && r.donors.includes(id),
      'a round after the restart',
    );
    expect(again.accepted).toBe(1);
  } finally {
    await h.close();
  }
});
