import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Store, SCHEMA_VERSION, StoreNotFoundError, type RoundRecord } from './store';
import { parseJobSpec } from './job-spec';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'starling-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function fakeClock(start = 1_700_000_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

function round(jobId: string, n: number, over: Partial<RoundRecord> = {}): RoundRecord {
  return {
    jobId,
    round: n,
    version: n,
    startedAt: 1000 * n,
    endedAt: 1000 * n + 500,
    assigned: 3,
    accepted: 2,
    late: 1,
    dropped: 0,
    rejected: 0,
    bytesUp: 100 * n,
    bytesDown: 10 * n,
    trainLoss: 3 / n,
    valLoss: 3.5 / n,
    ...over,
  };
}

test('jobs, rounds, donors and uploads persist across reopen', async (t) => {
  const dir = tempDir(t);
  const clock = fakeClock();
  const spec = parseJobSpec({ name: 'persist', train: { rounds: 3 } });
  let s = Store.open(dir, { now: clock.now });
  assert.equal(s.db.pragma('journal_mode', { simple: true }), 'wal');
  const job = s.createJob({ name: spec.name, spec, vocab: ['a', 'b', 'c'], corpusSha256: 'ab'.repeat(32) });
  assert.match(job.id, /^[0-9a-f]{12}$/);
  assert.equal(job.status, 'running');
  assert.equal(job.version, 0);
  assert.equal(job.round, 0);
  assert.equal(job.createdAt, clock.now());

  clock.advance(5);
  s.updateJobProgress(job.id, { version: 2, round: 2 });
  s.recordRound(round(job.id, 1));
  s.recordRound(round(job.id, 2, { trainLoss: Number.NaN, valLoss: null }));
  s.upsertDonor({
    id: 'peer-1',
    jobId: job.id,
    adapter: 'SwiftShader',
    roundsContributed: 1,
    bytesUp: 50,
    bytesDown: 7,
    state: 'ready',
  });
  const up = await s.saveUpload(new TextEncoder().encode('hello uploads\n'));
  s.close();

  s = Store.open(dir, { now: clock.now });
  t.after(() => s.close());
  const again = s.getJob(job.id)!;
  assert.deepEqual(again.spec, spec);
  assert.deepEqual(again.vocab, ['a', 'b', 'c']);
  assert.equal(again.version, 2);
  assert.equal(again.round, 2);
  assert.equal(again.updatedAt, job.createdAt + 5);
  const rounds = s.listRounds(job.id);
  assert.deepEqual(rounds[0], { ...round(job.id, 1), refused: null });
  assert.equal(rounds[1].trainLoss, null, 'NaN loss is stored as null');
  assert.equal(rounds[1].valLoss, null);
  const donors = s.listDonors(job.id);
  assert.equal(donors.length, 1);
  assert.equal(donors[0].adapter, 'SwiftShader');
  assert.equal(donors[0].bytesUp, 50);
  assert.deepEqual(s.getUpload(up.id), up);
  assert.equal((await s.readUpload(up.id)).toString('utf8'), 'hello uploads\n');
  assert.ok(existsSync(join(dir, 'uploads', `${up.id}.txt`)));
  assert.equal(s.schemaVersion(), SCHEMA_VERSION);
});

test('status changes, errors and listing order', (t) => {
  const clock = fakeClock();
  const s = Store.open(tempDir(t), { now: clock.now });
  t.after(() => s.close());
  const spec = parseJobSpec({});
  const a = s.createJob({ name: 'a', spec, vocab: ['x', 'y'], corpusSha256: '0' });
  clock.advance(1);
  const b = s.createJob({ name: 'b', spec, vocab: ['x', 'y'], corpusSha256: '0', status: 'stopped' });
  assert.deepEqual(
    s.listJobs().map((j) => j.id),
    [b.id, a.id],
    'newest first',
  );
  assert.deepEqual(
    s.listJobs({ status: 'running' }).map((j) => j.id),
    [a.id],
  );

  const failed = s.setJobStatus(a.id, 'failed', 'GPU lost');
  assert.equal(failed.status, 'failed');
  assert.equal(failed.lastError, 'GPU lost');
  assert.equal(s.setJobStatus(a.id, 'running').lastError, 'GPU lost', 'kept when not given');
  assert.equal(s.setJobStatus(a.id, 'running', null).lastError, null, 'cleared with null');

  assert.throws(() => s.setJobStatus('nope', 'done'), StoreNotFoundError);
  assert.throws(() => s.setJobStatus('nope', 'done'), /unknown job id "nope"/);
  assert.throws(() => s.updateJobProgress('nope', { version: 1, round: 1 }), /unknown job id "nope"/);
  assert.throws(
    () => s.updateJobProgress(a.id, { version: -1, round: 1 }),
    /version must be a non-negative integer, got -1/,
  );
  assert.throws(
    () => s.setJobStatus(a.id, 'paused' as never),
    /job status must be one of running, stopped, done, failed/,
  );
  assert.throws(() => s.recordRound(round('nope', 1)), /unknown job id "nope"/);
  assert.throws(() => s.recordRound(round(a.id, 1, { bytesUp: 1.5 })), /round.bytesUp must be a non-negative integer/);
  assert.throws(
    () =>
      s.upsertDonor({
        id: 'd',
        jobId: 'nope',
        adapter: '',
        roundsContributed: 0,
        bytesUp: 0,
        bytesDown: 0,
        state: 'ready',
      }),
    /unknown job id "nope"/,
  );
  assert.throws(() => s.createJob({ id: '../x', name: 'c', spec, vocab: ['x'], corpusSha256: '0' }), /job id must be/);
  assert.equal(s.getJob('nope'), undefined);
  assert.equal(s.getUpload('nope'), undefined);
});

test('rounds replace on re-record and page with afterRound/limit', (t) => {
  const s = Store.open(tempDir(t));
  t.after(() => s.close());
  const job = s.createJob({ name: 'r', spec: parseJobSpec({}), vocab: ['x', 'y'], corpusSha256: '0' });
  for (let n = 1; n <= 5; n++) s.recordRound(round(job.id, n));
  s.recordRound(round(job.id, 3, { accepted: 9 }));
  const all = s.listRounds(job.id);
  assert.deepEqual(
    all.map((r) => r.round),
    [1, 2, 3, 4, 5],
  );
  assert.equal(all[2].accepted, 9);
  assert.deepEqual(
    s.listRounds(job.id, { afterRound: 2, limit: 2 }).map((r) => r.round),
    [3, 4],
  );
  assert.deepEqual(s.listRounds('other'), []);
});

test('donors waiting with no job, and counters left out of an update', (t) => {
  const s = Store.open(tempDir(t));
  t.after(() => s.close());
  const job = s.createJob({ name: 'd', spec: parseJobSpec({}), vocab: ['x', 'y'], corpusSha256: '0' });
  s.upsertDonor({ id: 'p1', jobId: null, adapter: 'A', state: 'joined' });
  assert.equal(s.listDonors(null)[0].roundsContributed, 0);
  assert.equal(s.listDonors(null)[0].jobId, '');
  s.upsertDonor({
    id: 'p1',
    jobId: job.id,
    adapter: 'A',
    state: 'ready',
    roundsContributed: 2,
    bytesUp: 20,
    bytesDown: 5,
  });
  s.upsertDonor({ id: 'p1', jobId: job.id, adapter: 'A', state: 'training' });
  const [d] = s.listDonors(job.id);
  assert.deepEqual([d.state, d.roundsContributed, d.bytesUp, d.bytesDown], ['training', 2, 20, 5]);
  assert.equal(s.metrics().donors, 1, 'one donor, however many jobs');
});

test('donor upsert keeps first-seen, updates the rest', (t) => {
  const clock = fakeClock();
  const s = Store.open(tempDir(t), { now: clock.now });
  t.after(() => s.close());
  const job = s.createJob({ name: 'd', spec: parseJobSpec({}), vocab: ['x', 'y'], corpusSha256: '0' });
  const base = {
    id: 'p1',
    jobId: job.id,
    adapter: 'A',
    roundsContributed: 0,
    bytesUp: 0,
    bytesDown: 0,
    state: 'joined',
  };
  s.upsertDonor(base);
  const first = clock.now();
  clock.advance(1000);
  s.upsertDonor({ ...base, roundsContributed: 4, bytesUp: 400, bytesDown: 40, state: 'gone' });
  const [d] = s.listDonors(job.id);
  assert.equal(d.firstSeen, first);
  assert.equal(d.lastSeen, first + 1000);
  assert.equal(d.roundsContributed, 4);
  assert.equal(d.state, 'gone');
});

test('metrics add up what was recorded', async (t) => {
  const s = Store.open(tempDir(t));
  t.after(() => s.close());
  const spec = parseJobSpec({});
  const a = s.createJob({ name: 'a', spec, vocab: ['x', 'y'], corpusSha256: '0' });
  const b = s.createJob({ name: 'b', spec, vocab: ['x', 'y'], corpusSha256: '0' });
  s.setJobStatus(b.id, 'done');
  const rs = [round(a.id, 1), round(a.id, 2), round(b.id, 1)];
  for (const r of rs) s.recordRound(r);
  for (const job of [a, b]) {
    s.upsertDonor({
      id: 'shared',
      jobId: job.id,
      adapter: 'A',
      roundsContributed: 1,
      bytesUp: 1,
      bytesDown: 1,
      state: 'ready',
    });
  }
  s.upsertDonor({
    id: 'only-a',
    jobId: a.id,
    adapter: 'A',
    roundsContributed: 1,
    bytesUp: 1,
    bytesDown: 1,
    state: 'ready',
  });
  const payload = new Uint8Array(33).fill(65);
  await s.saveUpload(payload);
  const m = s.metrics();
  assert.deepEqual(m.jobs, { running: 1, stopped: 0, done: 1, failed: 0 });
  assert.equal(m.rounds, rs.length);
  assert.equal(
    m.bytesUp,
    rs.reduce((x, r) => x + r.bytesUp, 0),
  );
  assert.equal(
    m.bytesDown,
    rs.reduce((x, r) => x + r.bytesDown, 0),
  );
  assert.equal(
    m.updatesAccepted,
    rs.reduce((x, r) => x + r.accepted, 0),
  );
  assert.equal(
    m.updatesLate,
    rs.reduce((x, r) => x + r.late, 0),
  );
  assert.equal(m.donors, 2, 'distinct donors');
  assert.equal(m.uploads, 1);
  assert.equal(m.uploadBytes, payload.length);
});

test('a database from a newer Starling is refused with a clear error', (t) => {
  const dir = tempDir(t);
  Store.open(dir).close();
  const db = new Database(join(dir, 'starling.db'));
  db.prepare('UPDATE schema_version SET version = ?').run(SCHEMA_VERSION + 1);
  db.close();
  assert.throws(
    () => Store.open(dir),
    new RegExp(`schema version ${SCHEMA_VERSION + 1}, newer than this Starling understands \\(${SCHEMA_VERSION}\\)`),
  );
});

test('migration 2 gives old stored specs the train values they were trained with', (t) => {
  const dir = tempDir(t);
  const s = Store.open(dir);
  const current = parseJobSpec({ name: 'current', model: { type: 'gpt' } });
  const kept = s.createJob({ name: 'current', spec: current, vocab: ['a', 'b'], corpusSha256: 'ab'.repeat(32) });
  s.close();
  // A row as a Starling before compression, clipping and train.eps stored it, in a version-1 database.
  const db = new Database(join(dir, 'starling.db'));
  const old = {
    name: 'old',
    model: { type: 'mlp', context: 8, embed: 16, hidden: 128 },
    data: { source: 'builtin:cmudict', valFraction: 0.1, maxBytes: 1_000_000 },
    train: {
      rounds: 5,
      localSteps: 1,
      batch: 32,
      lr: 0.01,
      weightDecay: 0,
      beta1: 0.9,
      beta2: 0.999,
      roundDeadlineMs: 30_000,
      minDonors: 1,
      shards: 4,
      seed: 7,
      outerLr: 0.5,
    },
  };
  db.prepare(
    `INSERT INTO jobs (id, name, spec, vocab, corpus_sha256, status, created_at, updated_at)
     VALUES ('old-job', 'old', ?, '["a","b"]', ?, 'stopped', 1, 1)`,
  ).run(JSON.stringify(old), 'cd'.repeat(32));
  db.prepare('UPDATE schema_version SET version = 1').run();
  db.close();

  const reopened = Store.open(dir);
  t.after(() => reopened.close());
  assert.equal(reopened.schemaVersion(), SCHEMA_VERSION);
  const train = reopened.getJob('old-job')!.spec.train;
  const legacy = {
    gradClip: 0,
    outerMomentum: 0,
    codec: 'int8',
    downCodec: 'f32',
    errorDecay: 1,
    eps: 1e-8,
    aggregator: 'mean',
  };
  for (const [k, v] of Object.entries({ ...old.train, ...legacy })) assert.equal(train[k as keyof typeof train], v, k);
  // The stored row itself is upgraded (not only the value read), and fields a spec has are kept.
  const row = reopened.db.prepare("SELECT spec FROM jobs WHERE id = 'old-job'").get() as { spec: string };
  assert.equal(JSON.parse(row.spec).train.codec, 'int8');
  assert.deepEqual(reopened.getJob(kept.id)!.spec, current);
});

test('upload ids never escape the uploads folder', async (t) => {
  const s = Store.open(tempDir(t));
  t.after(() => s.close());
  assert.throws(() => s.uploadPath('../starling.db'), /upload id must be/);
  await assert.rejects(s.readUpload('../token'), /unknown upload id/);
  const rec = await s.saveUpload(new Uint8Array([1, 2, 3]));
  assert.deepEqual([...readFileSync(s.uploadPath(rec.id))], [1, 2, 3]);
});

test('migration 3: jobs stored before train.aggregator keep the plain mean; new jobs get clipped-mean', (t) => {
  const dir = tempDir(t);
  const s = Store.open(dir);
  const current = parseJobSpec({ name: 'new' });
  assert.equal(current.train.aggregator, 'clipped-mean');
  const kept = s.createJob({ name: 'new', spec: current, vocab: ['a'], corpusSha256: 'ab'.repeat(32) });
  const { aggregator: _a, ...oldTrain } = current.train;
  const old = s.createJob({
    name: 'old',
    spec: { ...current, train: oldTrain as typeof current.train },
    vocab: ['a'],
    corpusSha256: 'ab'.repeat(32),
  });
  s.close();
  const db = new Database(join(dir, 'starling.db'));
  db.prepare('UPDATE schema_version SET version = 2').run();
  db.close();
  const reopened = Store.open(dir);
  t.after(() => reopened.close());
  assert.equal(reopened.getJob(old.id)!.spec.train.aggregator, 'mean');
  const row = reopened.db.prepare('SELECT spec FROM jobs WHERE id = ?').get(old.id) as { spec: string };
  assert.equal(JSON.parse(row.spec).train.aggregator, 'mean', 'the stored row is upgraded');
  assert.equal(reopened.getJob(kept.id)!.spec.train.aggregator, 'clipped-mean');
});

test('a refused round is stored with its reason; the round list keeps its fields', (t) => {
  const s = Store.open(tempDir(t));
  t.after(() => s.close());
  const job = s.createJob({ name: 'r', spec: parseJobSpec({}), vocab: ['a'], corpusSha256: 'ab'.repeat(32) });
  s.recordRound(round(job.id, 1));
  s.recordRound(round(job.id, 2, { version: 1, refused: 'validation loss would rise from 3.5 to 837' }));
  s.recordRound(round(job.id, 3, { version: 2, refused: null }));
  assert.deepEqual(s.refusedRounds(job.id), [{ round: 2, reason: 'validation loss would rise from 3.5 to 837' }]);
  const listed = s.listRounds(job.id);
  assert.deepEqual(Object.keys(listed[1]), [...Object.keys(round(job.id, 1)), 'refused']);
  assert.deepEqual(
    listed.map((r) => r.refused),
    [null, 'validation loss would rise from 3.5 to 837', null],
  );
});
