import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApiRouter, type JobRunner } from './api';
import { Store } from './store';
import { serveApi } from './api.test-helper';

const TOKEN = 'rate-limit-token-0123456789';

const runner: JobRunner = {
  startJob: () => Promise.resolve(),
  stopJob: () => Promise.resolve(),
  resumeJob: () => Promise.resolve(),
  liveStatus: () => undefined,
};

test('each route class has its per-IP limit; over it is a 429 naming the limit', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'starling-ratelimit-'));
  const store = Store.open(dir);
  const router = createApiRouter({
    store,
    runner,
    token: TOKEN,
    dataDir: dir,
    rateLimits: { researcher: 4, create: 1, donor: 2, windowMs: 60_000 },
    log: () => {},
  });
  const served = await serveApi(router);
  t.after(async () => {
    await served.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const get = (path: string, token: string | null = TOKEN) =>
    fetch(served.base + path, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  const upload = () =>
    fetch(`${served.base}/api/uploads`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'text/plain' },
      body: 'some text\n',
    });

  // Creation: one per window, and it counts against the researcher limit too.
  assert.equal((await upload()).status, 201);
  const secondUpload = await upload();
  assert.equal(secondUpload.status, 429);
  assert.match(
    ((await secondUpload.json()) as { error: string }).error,
    /^too many requests: the limit for job creation and uploads is 1 per minute per IP address; retry in \d+ s$/,
  );
  assert.ok(Number(secondUpload.headers.get('retry-after')) > 0, 'Retry-After says when');
  // 2 of the 4 researcher requests are spent; wrong tokens count too (token guessing is limited).
  assert.equal((await get('/api/jobs')).status, 200);
  assert.equal((await get('/api/jobs', 'wrong-token')).status, 401);
  const limited = await get('/api/jobs');
  assert.equal(limited.status, 429);
  const body = (await limited.json()) as { error: string };
  assert.match(body.error, /the limit for researcher routes is 4 per minute per IP address/);

  // Donor routes count separately.
  assert.equal((await get('/api/openapi.json', null)).status, 200);
  assert.equal((await get('/api/donor/job', null)).status, 404, 'no job running, but not limited');
  const donor = await get('/api/donor/jobs/abc/shards/0', null);
  assert.equal(donor.status, 429);
  assert.match(((await donor.json()) as { error: string }).error, /the limit for donor routes is 2 per minute/);
});
