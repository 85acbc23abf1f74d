import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiError, createApiRouter, prepareJobData, type JobRunner } from './api';
import { decodeSafetensors, writeCheckpoint, tensorsToParams } from './checkpoint';
import { Store } from './store';
import { serveApi, type ServedApi } from './api.test-helper';
import { modelInit } from '../src/model/model';
import { jobModelConfig, parseJobSpec } from './job-spec';
import { shardRange } from '../src/data/split';

const TOKEN = 'test-token-0123456789abcdef';
const UPLOAD_LIMIT = 4096;

class FakeRunner implements JobRunner {
  calls: string[] = [];
  failNext: Error | null = null;
  private take(call: string): Promise<void> {
    this.calls.push(call);
    const e = this.failNext;
    this.failNext = null;
    return e ? Promise.reject(e) : Promise.resolve();
  }
  startJob(id: string) {
    return this.take(`start ${id}`);
  }
  stopJob(id: string) {
    return this.take(`stop ${id}`);
  }
  resumeJob(id: string) {
    return this.take(`resume ${id}`);
  }
  liveStatus(id: string) {
    return { donors: 2, jobId: id };
  }
  active: string | null = null;
  activeJobId() {
    return this.active;
  }
}

let dir: string;
let store: Store;
let served: ServedApi;
let base: string;
const runner = new FakeRunner();
const logged: string[] = [];
let corpusPath: string;
const corpusText = 'the quick brown fox jumps over the lazy dog.\n'.repeat(40);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'starling-api-'));
  store = Store.open(join(dir, 'data'));
  mkdirSync(join(dir, 'corpora'));
  corpusPath = join(dir, 'corpora', 'corpus.txt');
  writeFileSync(corpusPath, corpusText);
  served = await serveApi(
    createApiRouter({
      store,
      runner,
      token: TOKEN,
      dataDir: join(dir, 'data'),
      dataRoots: [join(dir, 'corpora')],
      limits: { uploadBytes: UPLOAD_LIMIT },
      // These tests create many jobs; rate-limits.test.ts tests the limits.
      rateLimits: { create: 1000 },
      log: (l) => logged.push(l),
    }),
  );
  base = served.base;
});

after(async () => {
  await served.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

const auth = { Authorization: `Bearer ${TOKEN}` };

async function call(
  method: string,
  path: string,
  opts: { body?: unknown; raw?: string | Uint8Array; type?: string; token?: string | null } = {},
) {
  const headers: Record<string, string> = {};
  if (opts.token !== null) headers.Authorization = `Bearer ${opts.token ?? TOKEN}`;
  let body: string | Uint8Array<ArrayBuffer> | undefined;
  if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['Content-Type'] = 'application/json';
  } else if (opts.raw !== undefined) {
    body = typeof opts.raw === 'string' ? opts.raw : new Uint8Array(opts.raw);
  }
  if (opts.type) headers['Content-Type'] = opts.type;
  const res = await fetch(base + path, { method, headers, body });
  const isJson = (res.headers.get('content-type') ?? '').includes('application/json');
  // Tests read fields of whatever the route answered: `any` on purpose.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const data: any = isJson ? await res.json() : new Uint8Array(await res.arrayBuffer());
  return { status: res.status, data, headers: res.headers };
}

/** After every bad request: the server still answers a good one. */
async function assertAlive() {
  const r = await call('GET', '/api/jobs');
  assert.equal(r.status, 200);
}

function smallSpec(over: Record<string, unknown> = {}) {
  return { name: 'fox', model: { context: 4 }, data: { source: `file:${corpusPath}` }, train: { shards: 4 }, ...over };
}

async function createJob(over: Record<string, unknown> = {}) {
  const r = await call('POST', '/api/jobs', { body: smallSpec(over) });
  assert.equal(r.status, 201, JSON.stringify(r.data));
  return r.data;
}

test('researcher routes need the right token', async () => {
  for (const [path, method] of [
    ['/api/jobs', 'GET'],
    ['/api/jobs', 'POST'],
    ['/api/metrics', 'GET'],
    ['/api/uploads', 'POST'],
    ['/api/jobs/x/checkpoint', 'GET'],
  ]) {
    const missing = await call(method, path, { token: null });
    assert.equal(missing.status, 401, `${method} ${path}`);
    assert.match(missing.data.error, /missing token: send the researcher token as "Authorization: Bearer <token>"/);
    const wrong = await call(method, path, { token: TOKEN + 'x' });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.data.error, 'wrong token');
    await assertAlive();
  }
  const basic = await fetch(`${base}/api/jobs`, { headers: { Authorization: `Basic ${TOKEN}` } });
  assert.equal(basic.status, 401);
  const prefix = await call('GET', '/api/jobs', { token: TOKEN.slice(0, -1) });
  assert.equal(prefix.status, 401, 'a prefix of the token is not the token');
});

test('malformed JSON is a 400 naming the problem', async () => {
  const r = await call('POST', '/api/jobs', { raw: '{"name": "x",', type: 'application/json' });
  assert.equal(r.status, 400);
  assert.match(r.data.error, /^malformed JSON body: .*JSON/);
  await assertAlive();
});

test('a bad spec is a 400 naming the field', async () => {
  const r = await call('POST', '/api/jobs', { body: { train: { lr: -1 } } });
  assert.equal(r.status, 400);
  assert.equal(r.data.error, 'train.lr must be a number in (0, 1], got -1');
  const unknown = await call('POST', '/api/jobs', { body: { trian: {} } });
  assert.equal(unknown.status, 400);
  assert.match(unknown.data.error, /unknown field "trian"/);
  const notObject = await call('POST', '/api/jobs', { raw: '[1,2]', type: 'application/json' });
  assert.equal(notObject.status, 400);
  assert.match(notObject.data.error, /job spec must be a JSON object, got an array/);
  await assertAlive();
});

test('file: sources outside the data roots are refused, naming the roots; inside one they are accepted', async () => {
  const roots = `(${join(dir, 'data')}, ${join(dir, 'corpora')})`;
  const outside = (src: string) =>
    `data.source ${JSON.stringify(src)} is outside the allowed data roots ${roots}; ` +
    'start the coordinator with --data-root DIR to allow another';
  const passwd = await call('POST', '/api/jobs', { body: smallSpec({ data: { source: 'file:/etc/passwd' } }) });
  assert.equal(passwd.status, 400);
  assert.equal(passwd.data.error, outside('file:/etc/passwd'));
  // A file beside the roots, named through `..` from inside one.
  writeFileSync(join(dir, 'beside.txt'), corpusText);
  const dotdot = `file:${join(dir, 'corpora')}/../beside.txt`;
  const escaped = await call('POST', '/api/jobs', { body: smallSpec({ data: { source: dotdot } }) });
  assert.equal(escaped.status, 400);
  assert.equal(escaped.data.error, outside(dotdot));
  // A symlink inside a root pointing outside it.
  symlinkSync(join(dir, 'beside.txt'), join(dir, 'corpora', 'link.txt'));
  const link = `file:${join(dir, 'corpora', 'link.txt')}`;
  const linked = await call('POST', '/api/jobs', { body: smallSpec({ data: { source: link } }) });
  assert.equal(linked.status, 400);
  assert.equal(linked.data.error, outside(link));
  // The coordinator's token is in its data directory, a root, and still refused.
  writeFileSync(join(dir, 'data', 'token'), corpusText);
  const tokenSrc = `file:${join(dir, 'data', 'token')}`;
  const token = await call('POST', '/api/jobs', { body: smallSpec({ data: { source: tokenSrc } }) });
  assert.equal(token.status, 400);
  assert.match(token.data.error, /is the coordinator's token or database, never a data source/);
  // `..` that stays inside a root is fine.
  const inside = `file:${join(dir, 'corpora')}/../corpora/corpus.txt`;
  const ok = await call('POST', '/api/jobs', { body: smallSpec({ data: { source: inside } }) });
  assert.equal(ok.status, 201, JSON.stringify(ok.data));
  await call('POST', `/api/jobs/${ok.data.id}/stop`);
  await assertAlive();
});

test('a stored job naming a file outside the roots gives donors nothing of it', async () => {
  const spec = { ...parseJobSpec(smallSpec({ data: { source: 'file:/etc/passwd' } })) };
  const job = store.createJob({
    name: 'old',
    spec,
    vocab: ['a', 'b'],
    corpusSha256: '0'.repeat(64),
    status: 'running',
  });
  for (const path of ['/api/donor/job', `/api/donor/jobs/${job.id}/shards/0`]) {
    runner.active = job.id;
    const r = await call('GET', path, { token: null });
    assert.equal(r.status, 500, path);
    assert.match(r.data.error, /is outside the allowed data roots/);
    assert.ok(!(r.data.error as string).includes('root:'), 'no line of the file');
  }
  runner.active = null;
  store.setJobStatus(job.id, 'stopped');
});

test('malformed requests are 4xx naming the problem, with no stack trace logged', async () => {
  const before = logged.length;
  const escape = await call('GET', '/api/jobs/%ff/rounds');
  assert.equal(escape.status, 400);
  assert.equal(
    escape.data.error,
    'malformed URL escape in path "/api/jobs/%ff/rounds": not valid percent-encoded UTF-8',
  );
  const donor = await call('GET', '/api/donor/jobs/%c0/shards/0', { token: null });
  assert.equal(donor.status, 400);
  assert.match(donor.data.error, /^malformed URL escape in path "\/api\/donor\/jobs\/%c0\/shards\/0"/);
  const gzip = await fetch(`${base}/api/jobs`, {
    method: 'POST',
    headers: { ...auth, 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' },
    body: '{"name":"not gzip"}',
  });
  assert.equal(gzip.status, 415);
  const gzipError = ((await gzip.json()) as { error: string }).error;
  assert.equal(
    gzipError,
    'Content-Encoding "gzip" is not accepted: send the body uncompressed, without Content-Encoding',
  );
  const br = await fetch(`${base}/api/uploads`, {
    method: 'POST',
    headers: { ...auth, 'Content-Type': 'text/plain', 'Content-Encoding': 'br' },
    body: 'hello',
  });
  assert.equal(br.status, 415);
  assert.match(((await br.json()) as { error: string }).error, /Content-Encoding "br" is not accepted/);
  assert.deepEqual(logged.slice(before), [], 'client errors log nothing');
  await assertAlive();
});

test('a bad data source fails at creation with a 400', async () => {
  const missing = join(dir, 'corpora', 'missing.txt');
  const r = await call('POST', '/api/jobs', { body: smallSpec({ data: { source: `file:${missing}` } }) });
  assert.equal(r.status, 400);
  assert.match(r.data.error, /does not exist/);
  assert.ok(r.data.error.includes(missing));
  const tooSmall = await call('POST', '/api/jobs', { body: smallSpec({ train: { shards: 60000 } }) });
  assert.equal(tooSmall.status, 400);
  assert.match(tooSmall.data.error, /corpus too small for train.shards 60000/);
  const upload = await call('POST', '/api/jobs', { body: smallSpec({ data: { source: 'upload:nothing' } }) });
  assert.equal(upload.status, 400);
  assert.match(upload.data.error, /unknown upload id "nothing"/);
  await assertAlive();
});

test('an oversized JSON body is a 413 naming the limit; non-JSON is a 415', async () => {
  const big = JSON.stringify({ name: 'x'.repeat(64 * 1024) });
  const r = await call('POST', '/api/jobs', { raw: big, type: 'application/json' });
  assert.equal(r.status, 413);
  assert.match(r.data.error, /request body too large \(\d+ bytes\): the limit for POST \/api\/jobs is 64 KiB/);
  await assertAlive();
  const text = await call('POST', '/api/jobs', { raw: 'name=x', type: 'text/plain' });
  assert.equal(text.status, 415);
  assert.match(text.data.error, /Content-Type must be application\/json, got "text\/plain"/);
  await assertAlive();
});

test('unknown jobs are 404 everywhere, unknown routes too', async () => {
  for (const [method, path] of [
    ['GET', '/api/jobs/nope'],
    ['POST', '/api/jobs/nope/stop'],
    ['POST', '/api/jobs/nope/resume'],
    ['GET', '/api/jobs/nope/checkpoint'],
    ['GET', '/api/jobs/nope/rounds'],
    ['GET', '/api/donor/jobs/nope/shards/0'],
  ]) {
    const r = await call(method, path);
    assert.equal(r.status, 404, `${method} ${path}`);
    assert.equal(r.data.error, 'unknown job id "nope"');
  }
  const weird = await call('GET', `/api/jobs/${encodeURIComponent('../../etc/passwd')}`);
  assert.equal(weird.status, 404);
  const route = await call('GET', '/api/nothing-here');
  assert.equal(route.status, 404);
  assert.equal(route.data.error, 'no route GET /api/nothing-here');
  await assertAlive();
});

test('create, list, get, stop, resume', async () => {
  runner.calls = [];
  const job = await createJob();
  assert.match(job.id, /^[0-9a-f]{12}$/);
  assert.equal(job.status, 'running');
  assert.equal(job.spec.model.context, 4);
  assert.equal(job.spec.train.lr, 3e-3, 'defaults filled');
  assert.equal(job.vocabSize, new Set(corpusText).size);
  assert.deepEqual(runner.calls, [`start ${job.id}`]);

  const list = await call('GET', '/api/jobs');
  assert.ok(list.data.jobs.some((j: { id: string }) => j.id === job.id));
  const got = await call('GET', `/api/jobs/${job.id}`);
  assert.equal(got.status, 200);
  assert.deepEqual(got.data.vocab, [...new Set(corpusText)].sort());
  assert.deepEqual(got.data.live, { donors: 2, jobId: job.id });
  assert.equal(got.data.checkpoint, null);

  const stop = await call('POST', `/api/jobs/${job.id}/stop`);
  assert.equal(stop.status, 200);
  assert.equal(stop.data.status, 'stopped');
  assert.equal(store.getJob(job.id)!.status, 'stopped');
  const again = await call('POST', `/api/jobs/${job.id}/stop`);
  assert.equal(again.status, 409);
  assert.match(again.data.error, /is not running \(status stopped\)/);
  const resume = await call('POST', `/api/jobs/${job.id}/resume`);
  assert.equal(resume.status, 200);
  assert.equal(resume.data.status, 'running');
  const resumeRunning = await call('POST', `/api/jobs/${job.id}/resume`);
  assert.equal(resumeRunning.status, 409);
  assert.deepEqual(runner.calls, [`start ${job.id}`, `stop ${job.id}`, `resume ${job.id}`]);
  store.setJobStatus(job.id, 'done');
  const resumeDone = await call('POST', `/api/jobs/${job.id}/resume`);
  assert.equal(resumeDone.status, 409);
  assert.match(resumeDone.data.error, /cannot be resumed: it is done/);
  await assertAlive();
});

test('an empty POST creates the default job (builtin cmudict)', async () => {
  const r = await call('POST', '/api/jobs');
  assert.equal(r.status, 201, JSON.stringify(r.data));
  assert.equal(r.data.spec.data.source, 'builtin:cmudict');
  assert.match(r.data.corpus, /CMU Pronouncing Dictionary/);
  await call('POST', `/api/jobs/${r.data.id}/stop`);
});

test('a runner that fails to start marks the job failed; its status code passes through', async () => {
  runner.failNext = new Error('no GPU adapter');
  const r = await call('POST', '/api/jobs', { body: smallSpec() });
  assert.equal(r.status, 500);
  assert.match(r.data.error, /could not start: no GPU adapter/);
  const failed = store.listJobs({ status: 'failed' })[0];
  assert.equal(failed.lastError, 'start failed: no GPU adapter');
  runner.failNext = new ApiError(409, 'another job is running');
  const busy = await call('POST', '/api/jobs', { body: smallSpec() });
  assert.equal(busy.status, 409);
  assert.match(busy.data.error, /another job is running/);
  const resumed = await call('POST', `/api/jobs/${failed.id}/resume`);
  assert.equal(resumed.status, 200, 'a failed job can be resumed');
  assert.equal(resumed.data.lastError, null);
  await call('POST', `/api/jobs/${failed.id}/stop`);
  await assertAlive();
});

test('checkpoint download: 404 before the first, then bytes that parse', async () => {
  const job = await createJob();
  const none = await call('GET', `/api/jobs/${job.id}/checkpoint`);
  assert.equal(none.status, 404);
  assert.equal(none.data.error, `job "${job.id}" has no checkpoint yet`);
  const cfg = jobModelConfig(job.spec.model, job.vocabSize);
  const params = modelInit(cfg, 9);
  await writeCheckpoint(join(dir, 'data'), job.id, cfg, 3, params);
  const r = await call('GET', `/api/jobs/${job.id}/checkpoint`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/octet-stream');
  assert.match(r.headers.get('content-disposition') ?? '', /\.safetensors"$/);
  const st = decodeSafetensors(r.data);
  assert.equal(st.metadata.version, '3');
  assert.deepEqual(tensorsToParams(cfg, st.tensors), params);
  const got = await call('GET', `/api/jobs/${job.id}`);
  assert.equal(got.data.checkpoint, `/api/jobs/${job.id}/checkpoint`);
  await call('POST', `/api/jobs/${job.id}/stop`);
});

test('rounds are listed with paging; bad paging is a 400', async () => {
  const job = await createJob();
  for (let n = 0; n < 4; n++) {
    store.recordRound({
      jobId: job.id,
      round: n,
      version: n,
      startedAt: n,
      endedAt: n + 1,
      assigned: 1,
      accepted: 1,
      late: 0,
      dropped: 0,
      rejected: 0,
      bytesUp: 10,
      bytesDown: 20,
      trainLoss: 1 / (n + 1),
      valLoss: 2 / (n + 1),
    });
  }
  const all = await call('GET', `/api/jobs/${job.id}/rounds`);
  assert.deepEqual(
    all.data.rounds.map((r: { round: number }) => r.round),
    [0, 1, 2, 3],
  );
  const page = await call('GET', `/api/jobs/${job.id}/rounds?after=0&limit=2`);
  assert.deepEqual(
    page.data.rounds.map((r: { round: number }) => r.round),
    [1, 2],
  );
  const negative = await call('GET', `/api/jobs/${job.id}/rounds?after=-2`);
  assert.equal(negative.status, 400);
  assert.match(negative.data.error, /after must be an integer in \[-1, /);
  const bad = await call('GET', `/api/jobs/${job.id}/rounds?limit=abc`);
  assert.equal(bad.status, 400);
  assert.equal(bad.data.error, 'limit must be an integer in [1, 10000], got "abc"');
  await call('POST', `/api/jobs/${job.id}/stop`);
  await assertAlive();
});

test('uploads: size limit, binary and empty refused, text accepted and usable as a source', async () => {
  const tooBig = await call('POST', '/api/uploads', { raw: 'a'.repeat(UPLOAD_LIMIT + 1), type: 'text/plain' });
  assert.equal(tooBig.status, 413);
  assert.match(tooBig.data.error, /the limit for POST \/api\/uploads is 4 KiB/);
  await assertAlive();
  const empty = await call('POST', '/api/uploads', { raw: '' });
  assert.equal(empty.status, 400);
  assert.match(empty.data.error, /upload is empty/);
  const bin = await call('POST', '/api/uploads', { raw: new Uint8Array([1, 0, 2]), type: 'application/octet-stream' });
  assert.equal(bin.status, 400);
  assert.match(bin.data.error, /upload looks binary \(NUL byte at offset 1\)/);
  await assertAlive();
  const text = 'abcdefgh\n'.repeat(100);
  const ok = await call('POST', '/api/uploads', { raw: text, type: 'text/plain' });
  assert.equal(ok.status, 201);
  assert.equal(ok.data.bytes, text.length);
  const job = await createJob({ data: { source: ok.data.source } });
  assert.equal(job.vocabSize, new Set(text).size);
  await call('POST', `/api/jobs/${job.id}/stop`);
});

test('metrics are Prometheus text that matches the store', async () => {
  // A running job with a donor and a finished round: per-donor and per-round bytes are exported.
  const job = await createJob();
  store.upsertDonor({ id: 'donor-m', jobId: job.id, adapter: 'test', state: 'ready', bytesUp: 1234, bytesDown: 5678 });
  const now = Date.now();
  store.recordRound({
    jobId: job.id,
    round: 0,
    version: 1,
    startedAt: now,
    endedAt: now,
    assigned: 2,
    accepted: 2,
    late: 0,
    dropped: 0,
    rejected: 0,
    bytesUp: 1000,
    bytesDown: 3000,
    trainLoss: 2,
    valLoss: 2,
  });
  store.updateJobProgress(job.id, { version: 1, round: 1 });
  const r = await fetch(`${base}/api/metrics`, { headers: auth });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0.0.4/);
  const text = await r.text();
  const m = store.metrics();
  for (const [status, n] of Object.entries(m.jobs))
    assert.ok(text.includes(`starling_jobs{status="${status}"} ${n}\n`), status);
  assert.ok(text.includes(`starling_rounds_total ${m.rounds}\n`));
  assert.ok(text.includes(`starling_round_bytes_total{direction="up"} ${m.bytesUp}\n`));
  assert.match(text, /# TYPE starling_api_responses_total counter\nstarling_api_responses_total\{code="200"\} \d+/);
  assert.ok(text.includes(`starling_donor_bytes_total{job="${job.id}",donor="donor-m",direction="up"} 1234\n`));
  assert.ok(text.includes(`starling_donor_bytes_total{job="${job.id}",donor="donor-m",direction="down"} 5678\n`));
  assert.ok(text.includes(`starling_round_bytes_per_donor{job="${job.id}",direction="up"} 500\n`));
  assert.ok(text.includes(`starling_round_bytes_per_donor{job="${job.id}",direction="down"} 1500\n`));
  for (const line of text.trimEnd().split('\n')) {
    assert.match(line, /^(# (HELP|TYPE) \w+ .+|\w+(\{\w+="[^"]*"(,\w+="[^"]*")*\})? \d+(\.\d+)?)$/, line);
  }
  await call('POST', `/api/jobs/${job.id}/stop`);
});

test('donor routes: the running job and its shards, no token needed', async () => {
  for (const j of store.listJobs({ status: 'running' })) store.setJobStatus(j.id, 'stopped');
  const none = await call('GET', '/api/donor/job', { token: null });
  assert.equal(none.status, 404);
  assert.equal(none.data.error, 'no job is running');

  const job = await createJob({ train: { shards: 3 } });
  const info = await call('GET', '/api/donor/job', { token: null });
  assert.equal(info.status, 200);
  assert.equal(info.data.id, job.id);
  assert.equal(info.data.model.vocab, job.vocabSize);
  assert.equal(info.data.model.context, 4);
  assert.equal(info.data.shards, 3);
  assert.equal(info.data.train.batch, job.spec.train.batch);

  // With two running jobs, donors are pointed at the one the runner says is active.
  const other = await createJob();
  runner.active = other.id;
  assert.equal((await call('GET', '/api/donor/job', { token: null })).data.id, other.id);
  runner.active = null;
  assert.equal((await call('GET', '/api/donor/job', { token: null })).data.id, job.id, 'else the oldest running job');
  await call('POST', `/api/jobs/${other.id}/stop`);

  const data = await prepareJobData(store, store.getJob(job.id)!);
  assert.equal(info.data.trainTokens, data.train.length);
  const parts: number[] = [];
  for (let n = 0; n < 3; n++) {
    const r = await call('GET', `/api/donor/jobs/${job.id}/shards/${n}`, { token: null });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'application/octet-stream');
    const bytes = r.data as Uint8Array;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const [start, end] = shardRange(data.train.length, n, 3);
    assert.equal(bytes.length, 4 * (end - start));
    assert.equal(r.headers.get('x-starling-tokens'), String(end - start));
    for (let i = 0; i < bytes.length; i += 4) parts.push(view.getInt32(i, true));
  }
  assert.deepEqual(parts, Array.from(data.train), 'shards concatenate to the training tokens');
  assert.equal(data.tokenizer.decode(parts), corpusText.slice(0, parts.length));

  for (const bad of ['3', '-1', 'x', '1.5', '99999999999']) {
    const r = await call('GET', `/api/donor/jobs/${job.id}/shards/${bad}`, { token: null });
    assert.equal(r.status, 400, bad);
    assert.equal(r.data.error, `shard must be an integer in [0, 2], got "${bad}"`);
  }
  await call('POST', `/api/jobs/${job.id}/stop`);
  const stopped = await call('GET', `/api/donor/jobs/${job.id}/shards/0`, { token: null });
  assert.equal(stopped.status, 404);
  assert.match(stopped.data.error, /is not running/);
  await assertAlive();
  assert.deepEqual(logged, [], 'no request above was an internal error');
});
