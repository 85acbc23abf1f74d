// The OpenAPI document against what the router really serves: every route documented and every
// documented route served, every $ref resolvable, the answers of a live router valid against the
// schemas the document is built from, and the docs' job spec examples accepted by the spec schema
// and by parseJobSpec.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Router } from 'express';
import { Value } from '@sinclair/typebox/value';
import { API_ROUTES, createApiRouter, openApiDocument, type JobRunner } from './api';
import { ErrorBody, JobSpecInput, type DonorConfig } from './api-schemas';
import { buildOpenApi, openApiPath } from './openapi';
import { parseJobSpec } from './job-spec';
import { Store } from './store';
import { serveApi, type ServedApi } from './api.test-helper';

const TOKEN = 'openapi-test-token-0123456789';
const DONOR_CONFIG: DonorConfig = { peerPath: '/peerjs', coordinatorPeerId: 'starling-coordinator-t', iceServers: [] };

const runner: JobRunner = {
  startJob: () => Promise.resolve(),
  stopJob: () => Promise.resolve(),
  resumeJob: () => Promise.resolve(),
  liveStatus: (id) => ({ active: false, queued: true, donors: [], jobId: id }),
};

let dir: string;
let store: Store;
let router: Router;
let served: ServedApi;
let base: string;
let corpusPath: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'starling-openapi-'));
  store = Store.open(join(dir, 'data'));
  corpusPath = join(dir, 'corpus.txt');
  writeFileSync(corpusPath, 'pack my box with five dozen liquor jugs.\n'.repeat(40));
  router = createApiRouter({
    store,
    runner,
    token: TOKEN,
    dataDir: join(dir, 'data'),
    dataRoots: [dir],
    donorConfig: DONOR_CONFIG,
  });
  served = await serveApi(router);
  base = served.base;
});

after(async () => {
  await served.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

type Doc = {
  openapi: string;
  paths: Record<string, Record<string, { security: unknown[]; responses: Record<string, unknown> }>>;
};
const doc = openApiDocument() as Doc;

test('every route on the router is documented with its method, and every documented route is served', () => {
  const served = new Set<string>();
  for (const layer of router.stack) {
    if (!layer.route) continue;
    for (const l of layer.route.stack) served.add(`${l.method.toUpperCase()} ${openApiPath(layer.route.path)}`);
  }
  const documented = new Set<string>();
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const method of Object.keys(ops)) documented.add(`${method.toUpperCase()} ${path}`);
  }
  assert.ok(served.size >= 14, `the router serves ${served.size} routes`);
  for (const r of served) assert.ok(documented.has(r), `${r} is served but not in the OpenAPI document`);
  for (const r of documented) assert.ok(served.has(r), `${r} is documented but not served`);
  assert.ok(documented.has('GET /api/jobs/{id}/rounds') && documented.has('GET /api/donor/jobs/{id}/shards/{n}'));
});

test('researcher routes need the bearer token in the document, donor routes and the document itself none', () => {
  for (const route of API_ROUTES) {
    const op = doc.paths[openApiPath(route.path)][route.method];
    const name = `${route.method.toUpperCase()} ${route.path}`;
    if (route.auth) {
      assert.deepEqual(op.security, [{ bearerToken: [] }], name);
      assert.ok(op.responses['401'], `${name} documents its 401`);
    } else {
      assert.deepEqual(op.security, [], name);
      assert.equal(op.responses['401'], undefined, name);
    }
    assert.equal(route.auth, !route.path.startsWith('/api/donor/') && route.path !== '/api/openapi.json', name);
  }
});

test('the document is JSON with openapi 3.1.0, unique operation ids, and every $ref resolves', () => {
  const text = JSON.stringify(doc);
  const parsed = JSON.parse(text) as Record<string, unknown>;
  assert.deepEqual(parsed, doc, 'nothing is lost in JSON (no undefined, functions or symbols)');
  assert.equal(parsed.openapi, '3.1.0');
  assert.deepEqual(buildOpenApi(API_ROUTES), doc, 'the builder is deterministic');

  const refs: string[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (k === '$ref') refs.push(x as string);
        else walk(x);
      }
    }
  };
  walk(parsed);
  assert.ok(refs.length > 10, `${refs.length} $refs`);
  for (const ref of refs) {
    assert.match(ref, /^#\//, ref);
    let at: unknown = parsed;
    for (const part of ref.slice(2).split('/')) {
      at = (at as Record<string, unknown> | undefined)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
    }
    assert.ok(at && typeof at === 'object', `$ref ${ref} resolves`);
  }
  assert.ok(refs.includes('#/components/schemas/Error') && refs.includes('#/components/schemas/JobSpecInput'));

  const ids = Object.values(doc.paths).flatMap((ops) =>
    Object.values(ops).map((op) => (op as { operationId?: string }).operationId),
  );
  assert.ok(
    ids.every((id) => typeof id === 'string' && /^[a-zA-Z]\w+$/.test(id)),
    ids.join(', '),
  );
  assert.equal(new Set(ids).size, ids.length, 'operation ids are unique');
});

test('GET /api/openapi.json answers the document without a token', async () => {
  const r = await fetch(`${base}/api/openapi.json`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
  assert.deepEqual(await r.json(), doc);
});

/** The job spec examples in docs/JOBS.md: its ```json blocks and inline `{...}` spans that are specs. */
function jobSpecExamples(): { where: string; spec: unknown }[] {
  const md = readFileSync(new URL('../docs/JOBS.md', import.meta.url), 'utf8');
  const out: { where: string; spec: unknown }[] = [];
  for (const m of md.matchAll(/^```json\n([\s\S]*?)^```$/gm)) out.push({ where: 'json block', spec: JSON.parse(m[1]) });
  const specKeys = new Set(['name', 'model', 'data', 'train']);
  for (const m of md.matchAll(/`(\{[^`]*\})`/g)) {
    let v: unknown;
    try {
      v = JSON.parse(m[1]);
    } catch {
      continue; // a pattern such as { "rank": r, … }, not JSON
    }
    // A spec has spec sections at the top level; a model section alone ({"type": "gpt", …}) is not one.
    if (v && typeof v === 'object' && Object.keys(v).length && Object.keys(v).every((k) => specKeys.has(k))) {
      out.push({ where: `inline ${m[1].slice(0, 40)}`, spec: v });
    }
  }
  return out;
}

test('the job spec examples in docs/JOBS.md match JobSpecInput and parseJobSpec accepts them', () => {
  const examples = jobSpecExamples();
  assert.ok(examples.filter((e) => e.where === 'json block').length >= 1, 'docs/JOBS.md has a ```json spec');
  assert.ok(examples.length >= 3, `${examples.length} examples`);
  for (const { where, spec } of examples) {
    assert.ok(Value.Check(JobSpecInput, spec), `${where}: ${JSON.stringify([...Value.Errors(JobSpecInput, spec)][0])}`);
    assert.doesNotThrow(() => parseJobSpec(spec), where);
  }
});

/** The documented schema of a live answer; fails when the route or the status is not documented. */
function documentedSchema(method: string, path: string, status: number) {
  const route = API_ROUTES.find(
    (r) => r.method === method.toLowerCase() && new RegExp(`^${r.path.replace(/:\w+/g, '[^/]+')}$`).test(path),
  );
  assert.ok(route, `${method} ${path} is a documented route`);
  if (status === 401 && route.auth) return ErrorBody;
  const res = route.doc.responses[status];
  assert.ok(res, `${method} ${path} documents status ${status}`);
  assert.ok(res.schema, `${method} ${path} ${status} has a schema`);
  return res.schema;
}

async function checkAnswer(method: string, path: string, opts: { body?: string; type?: string; token?: boolean } = {}) {
  const headers: Record<string, string> = {};
  if (opts.token !== false) headers.Authorization = `Bearer ${TOKEN}`;
  if (opts.type) headers['Content-Type'] = opts.type;
  const r = await fetch(base + path, { method, headers, body: opts.body });
  const schema = documentedSchema(method, path.split('?')[0], r.status);
  if ((r.headers.get('content-type') ?? '').startsWith('application/json')) {
    const body: unknown = await r.json();
    const first = [...Value.Errors(schema, body)][0];
    assert.ok(!first, `${method} ${path} ${r.status}: ${first?.path} ${first?.message} in ${JSON.stringify(body)}`);
    return { status: r.status, body: body as Record<string, unknown> };
  }
  await r.arrayBuffer();
  return { status: r.status, body: {} };
}

test('live answers, successes and failures, match their documented status and schema', async () => {
  const source = `file:${corpusPath}`;
  const spec = JSON.stringify({ name: 'jugs', model: { context: 4 }, data: { source }, train: { shards: 2 } });
  const created = await checkAnswer('POST', '/api/jobs', { body: spec, type: 'application/json' });
  assert.equal(created.status, 201);
  const id = created.body.id as string;
  store.recordRound({
    jobId: id,
    round: 0,
    version: 1,
    startedAt: 1,
    endedAt: 2,
    assigned: 1,
    accepted: 1,
    late: 0,
    dropped: 0,
    rejected: 0,
    bytesUp: 10,
    bytesDown: 20,
    trainLoss: 3,
    valLoss: null,
  });
  store.upsertDonor({ id: 'donor-a', jobId: id, adapter: 'test', state: 'ready', bytesUp: 1, bytesDown: 2 });
  const upload = await checkAnswer('POST', '/api/uploads', { body: 'some text\n', type: 'text/plain' });
  assert.equal(upload.status, 201);

  const expect: [string, string, number, { body?: string; type?: string; token?: boolean }?][] = [
    ['GET', '/api/jobs', 200],
    ['GET', `/api/jobs/${id}`, 200],
    ['GET', `/api/jobs/${id}/rounds?after=-1&limit=5`, 200],
    ['GET', `/api/jobs/${id}/donors`, 200],
    ['GET', `/api/jobs/${id}/checkpoint`, 404],
    ['GET', '/api/donor/config', 200, { token: false }],
    ['GET', '/api/donor/job', 200, { token: false }],
    ['GET', `/api/donor/jobs/${id}/shards/1`, 200, { token: false }],
    ['GET', `/api/donor/jobs/${id}/shards/2`, 400, { token: false }],
    ['GET', '/api/metrics', 200],
    ['GET', '/api/jobs', 401, { token: false }],
    ['GET', '/api/jobs/nope', 404],
    ['GET', `/api/jobs/${id}/rounds?limit=0`, 400],
    ['POST', '/api/jobs', 400, { body: '{"train":{"lr":5}}', type: 'application/json' }],
    ['POST', '/api/jobs', 415, { body: 'x', type: 'text/plain' }],
    ['POST', '/api/uploads', 400, { body: '' }],
    ['POST', `/api/jobs/${id}/resume`, 409],
    ['POST', `/api/jobs/${id}/stop`, 200],
    ['POST', `/api/jobs/${id}/stop`, 409],
    ['GET', '/api/donor/job', 404, { token: false }],
    ['GET', `/api/donor/jobs/${id}/shards/0`, 404, { token: false }],
    ['POST', `/api/jobs/${id}/resume`, 200],
  ];
  for (const [method, path, status, opts] of expect) {
    const r = await checkAnswer(method, path, opts);
    assert.equal(r.status, status, `${method} ${path}: ${JSON.stringify(r.body)}`);
  }
});

test("docs/API.md's route table lists exactly the served routes", () => {
  const md = readFileSync(new URL('../docs/API.md', import.meta.url), 'utf8');
  const listed = [...md.matchAll(/^\| `(GET|POST|PUT|PATCH|DELETE) (\/api\/\S*)` \|/gm)].map((m) => `${m[1]} ${m[2]}`);
  const served = API_ROUTES.map((r) => `${r.method.toUpperCase()} ${r.path}`);
  assert.deepEqual([...listed].sort(), [...served].sort());
});
