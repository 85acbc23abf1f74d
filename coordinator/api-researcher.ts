// Researcher routes: create, list, watch, stop and resume jobs, upload texts, download checkpoints,
// read metrics. All need `Authorization: Bearer <token>` (api.ts puts the check in front).
//
// Status transitions: these routes set 'running' before they call runner.startJob/resumeJob and
// 'stopped' after runner.stopJob resolves; the runner records 'done' and 'failed' (and progress) itself.
import type { Static } from '@sinclair/typebox';
import type { Request, Response } from 'express';
import { existsSync } from 'node:fs';
import { checkpointPaths } from './checkpoint';
import { buildJobData, cacheJobData, decodeText, loadCorpus, sha256Hex } from './corpus';
import { jobModelConfig, parseJobSpec } from './job-spec';
import { modelParamCount } from '../src/model/model';
import type { JobRecord, JobStatus, Store } from './store';
import { ApiError, getJobOr404, parseIntParam, quote, type ApiContext, type ApiRoute } from './api-common';
import {
  Binary,
  CreatedJob,
  DonorList,
  JobDetail,
  JobIdParams,
  JobList,
  JobSpecInput,
  JobSummary,
  PlainText,
  RoundList,
  RoundsQuery,
  Upload,
  failure,
  json,
} from './api-schemas';

function jobSummary(job: JobRecord): Static<typeof JobSummary> {
  return {
    id: job.id,
    name: job.name,
    status: job.status,
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
    version: job.version,
    round: job.round,
    rounds: job.spec.train.rounds,
    vocabSize: job.vocab.length,
    params: modelParamCount(jobModelConfig(job.spec.model, job.vocab.length)),
    lastError: job.lastError,
    spec: job.spec,
  };
}

/** Marks the job failed and turns the runner's error into the response. */
function runnerFailed(store: Store, job: JobRecord, action: string, e: unknown): ApiError {
  const msg = (e as Error)?.message ?? String(e);
  store.setJobStatus(job.id, 'failed', `${action} failed: ${msg}`);
  const status = e instanceof ApiError ? e.status : 500;
  return new ApiError(status, `job ${quote(job.id)} could not ${action}: ${msg}`);
}

async function createJob({ store, runner, fileRoots }: ApiContext, req: Request, res: Response): Promise<void> {
  const spec = parseJobSpec(req.body);
  // Load and tokenize now, so a bad source or a corpus that does not fit fails the request.
  const corpus = await loadCorpus(spec.data.source, { maxBytes: spec.data.maxBytes, store, fileRoots });
  const data = buildJobData(spec, corpus);
  const created = store.createJob({
    name: spec.name,
    spec,
    vocab: [...data.tokenizer.vocab],
    corpusSha256: sha256Hex(corpus.text),
    status: 'running',
  });
  cacheJobData(store, created.id, data);
  try {
    await runner.startJob(created.id);
  } catch (e) {
    throw runnerFailed(store, created, 'start', e);
  }
  const body: Static<typeof CreatedJob> = { ...jobSummary(store.getJob(created.id)!), corpus: data.description };
  res.status(201).json(body);
}

function listJobs({ store }: ApiContext, _req: Request, res: Response): void {
  const body: Static<typeof JobList> = { jobs: store.listJobs().map(jobSummary) };
  res.json(body);
}

function getJob({ store, runner, dataDir }: ApiContext, req: Request, res: Response): void {
  const job = getJobOr404(store, req.params.id);
  let live: unknown = null;
  try {
    live = runner.liveStatus(job.id) ?? null;
  } catch (e) {
    live = { error: `live status unavailable: ${(e as Error).message}` };
  }
  const hasCheckpoint = existsSync(checkpointPaths(dataDir, job.id).latest);
  const body: Static<typeof JobDetail> = {
    ...jobSummary(job),
    vocab: job.vocab,
    checkpoint: hasCheckpoint ? `/api/jobs/${job.id}/checkpoint` : null,
    live,
  };
  res.json(body);
}

async function stopJob({ store, runner }: ApiContext, req: Request, res: Response): Promise<void> {
  const job = getJobOr404(store, req.params.id);
  if (job.status !== 'running') throw new ApiError(409, `job ${quote(job.id)} is not running (status ${job.status})`);
  await runner.stopJob(job.id);
  res.json(jobSummary(store.setJobStatus(job.id, 'stopped')));
}

async function resumeJob({ store, runner }: ApiContext, req: Request, res: Response): Promise<void> {
  const job = getJobOr404(store, req.params.id);
  const resumable: JobStatus[] = ['stopped', 'failed'];
  if (!resumable.includes(job.status)) {
    const why = `it is ${job.status} (only stopped or failed jobs resume)`;
    throw new ApiError(409, `job ${quote(job.id)} cannot be resumed: ${why}`);
  }
  store.setJobStatus(job.id, 'running', null);
  try {
    await runner.resumeJob(job.id);
  } catch (e) {
    throw runnerFailed(store, job, 'resume', e);
  }
  res.json(jobSummary(store.getJob(job.id)!));
}

function downloadCheckpoint({ store, dataDir }: ApiContext, req: Request, res: Response): Promise<void> {
  const job = getJobOr404(store, req.params.id);
  const path = checkpointPaths(dataDir, job.id).latest;
  // Checkpoints are replaced by rename, so the file sendFile opens is always a whole one.
  return new Promise((resolve, reject) => {
    const headers = {
      'Content-Type': 'application/octet-stream',
      'Content-Disposition': `attachment; filename="starling-${job.id}.safetensors"`,
      'Cache-Control': 'no-store',
    };
    res.sendFile(path, { headers, etag: false, lastModified: false }, (err) => {
      if (!err) resolve();
      else if ((err as NodeJS.ErrnoException).code !== 'ENOENT') reject(err);
      else if (!res.headersSent) reject(new ApiError(404, `job ${quote(job.id)} has no checkpoint yet`));
      else resolve();
    });
  });
}

function listRounds({ store }: ApiContext, req: Request, res: Response): void {
  const job = getJobOr404(store, req.params.id);
  // Rounds are 0-based; `after` = -1 (the default) lists from the first.
  const after = parseIntParam('after', req.query.after, -1, Number.MAX_SAFE_INTEGER, -1);
  const limit = parseIntParam('limit', req.query.limit, 1, 10_000, 1000);
  const rounds = store.listRounds(job.id, { afterRound: after, limit });
  const body: Static<typeof RoundList> = { jobId: job.id, rounds };
  res.json(body);
}

function listDonors({ store }: ApiContext, req: Request, res: Response): void {
  const job = getJobOr404(store, req.params.id);
  const body: Static<typeof DonorList> = { jobId: job.id, donors: store.listDonors(job.id) };
  res.json(body);
}

async function uploadText({ store }: ApiContext, req: Request, res: Response): Promise<void> {
  const raw: unknown = req.body;
  if (!Buffer.isBuffer(raw) || raw.length === 0) {
    throw new ApiError(400, 'upload is empty: send the UTF-8 text as the request body');
  }
  decodeText(raw, 'upload'); // refuse binary or non-UTF-8 now rather than at job creation
  const rec = await store.saveUpload(raw);
  const body: Static<typeof Upload> = { id: rec.id, bytes: rec.bytes, sha256: rec.sha256, source: `upload:${rec.id}` };
  res.status(201).json(body);
}

function metrics({ store, responses }: ApiContext, _req: Request, res: Response): void {
  const m = store.metrics();
  const lines: string[] = [];
  const metric = (name: string, type: 'gauge' | 'counter', help: string, samples: [string, number][]) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of samples) lines.push(`${name}${labels} ${v}`);
  };
  metric(
    'starling_jobs',
    'gauge',
    'Jobs by status.',
    Object.entries(m.jobs).map(([s, n]) => [`{status="${s}"}`, n]),
  );
  metric('starling_rounds_total', 'counter', 'Rounds completed, all jobs.', [['', m.rounds]]);
  metric('starling_updates_total', 'counter', 'Donor updates by outcome, all jobs.', [
    ['{outcome="accepted"}', m.updatesAccepted],
    ['{outcome="late"}', m.updatesLate],
    ['{outcome="dropped"}', m.updatesDropped],
    ['{outcome="rejected"}', m.updatesRejected],
  ]);
  metric('starling_donors_total', 'counter', 'Distinct donors ever seen.', [['', m.donors]]);
  metric('starling_round_bytes_total', 'counter', 'Bytes moved in rounds (up: donors to coordinator).', [
    ['{direction="up"}', m.bytesUp],
    ['{direction="down"}', m.bytesDown],
  ]);
  // Per donor and per round, for the jobs running now (label values are ids: [A-Za-z0-9_-]).
  const running = store.listJobs({ status: 'running' });
  metric(
    'starling_donor_bytes_total',
    'counter',
    'Bytes sent to (down) and received from (up) each donor of a running job, as counted on its data channel.',
    running.flatMap((j) =>
      store.listDonors(j.id).flatMap((d): [string, number][] => [
        [`{job="${j.id}",donor="${d.id}",direction="up"}`, d.bytesUp],
        [`{job="${j.id}",donor="${d.id}",direction="down"}`, d.bytesDown],
      ]),
    ),
  );
  metric(
    'starling_round_bytes_per_donor',
    'gauge',
    "Bytes per assigned donor in a running job's last round " +
      '(up: its update; down: broadcast step or snapshot, and assignment).',
    running.flatMap((j): [string, number][] => {
      const last = store.listRounds(j.id, { afterRound: j.round - 2 }).at(-1);
      if (!last || last.assigned === 0) return [];
      return [
        [`{job="${j.id}",direction="up"}`, last.bytesUp / last.assigned],
        [`{job="${j.id}",direction="down"}`, last.bytesDown / last.assigned],
      ];
    }),
  );
  metric('starling_uploads_total', 'counter', 'Corpora uploaded.', [['', m.uploads]]);
  metric('starling_upload_bytes_total', 'counter', 'Bytes of corpora uploaded.', [['', m.uploadBytes]]);
  metric(
    'starling_api_responses_total',
    'counter',
    'API responses by HTTP status since start.',
    [...responses].sort((a, b) => a[0] - b[0]).map(([code, n]) => [`{code="${code}"}`, n]),
  );
  // A Buffer, because express rewrites the Content-Type of a string body (moving `charset` first).
  res.set('Content-Type', 'text/plain; version=0.0.4; charset=utf-8').send(Buffer.from(lines.join('\n') + '\n'));
}

const unknownJob = failure('unknown job id');

export const RESEARCHER_ROUTES: readonly ApiRoute[] = [
  {
    method: 'post',
    path: '/api/jobs',
    auth: true,
    body: 'json',
    costly: true,
    handler: createJob,
    doc: {
      summary: 'Create a job and start it (it is queued behind running jobs)',
      body: {
        description: 'the job spec (docs/JOBS.md); every field is optional and an empty body is the default job',
        required: false,
        contentType: 'application/json',
        schema: JobSpecInput,
      },
      responses: {
        201: json('the created job, running', CreatedJob),
        400: failure('bad spec, bad data source or text, text that does not fit the model, malformed JSON'),
        409: failure('the runner refused to start it (its status passes through); the job is marked failed'),
        413: failure('body over the JSON limit (64 KiB)'),
        415: failure('a body whose Content-Type is not JSON'),
        500: failure('the job could not start; it is marked failed'),
      },
    },
  },
  {
    method: 'get',
    path: '/api/jobs',
    auth: true,
    handler: listJobs,
    doc: { summary: 'List jobs', responses: { 200: json('every job, newest first', JobList) } },
  },
  {
    method: 'get',
    path: '/api/jobs/:id',
    auth: true,
    handler: getJob,
    doc: {
      summary: 'One job with its vocabulary, checkpoint link and live state',
      params: JobIdParams,
      responses: { 200: json('the job', JobDetail), 404: unknownJob },
    },
  },
  {
    method: 'post',
    path: '/api/jobs/:id/stop',
    auth: true,
    handler: stopJob,
    doc: {
      summary: 'Stop a running job',
      params: JobIdParams,
      responses: {
        200: json('the job, stopped', JobSummary),
        404: unknownJob,
        409: failure('the job is not running'),
      },
    },
  },
  {
    method: 'post',
    path: '/api/jobs/:id/resume',
    auth: true,
    handler: resumeJob,
    doc: {
      summary: 'Resume a stopped or failed job from its latest checkpoint',
      params: JobIdParams,
      responses: {
        200: json('the job, running', JobSummary),
        404: unknownJob,
        409: failure('the job is not stopped or failed (or the runner refused)'),
        500: failure('it could not resume; the job is marked failed'),
      },
    },
  },
  {
    method: 'get',
    path: '/api/jobs/:id/checkpoint',
    auth: true,
    handler: downloadCheckpoint,
    doc: {
      summary: 'Download the latest weights as safetensors',
      params: JobIdParams,
      responses: {
        200: {
          description: 'the checkpoint (attachment starling-<id>.safetensors), loadable by PyTorch',
          contentType: 'application/octet-stream',
          schema: Binary,
        },
        404: failure('unknown job id, or no checkpoint yet'),
      },
    },
  },
  {
    method: 'get',
    path: '/api/jobs/:id/rounds',
    auth: true,
    handler: listRounds,
    doc: {
      summary: "A job's finished rounds, paged",
      params: JobIdParams,
      query: RoundsQuery,
      responses: {
        200: json('rounds numbered above `after`, oldest first', RoundList),
        400: failure('after or limit out of range'),
        404: unknownJob,
      },
    },
  },
  {
    method: 'get',
    path: '/api/jobs/:id/donors',
    auth: true,
    handler: listDonors,
    doc: {
      summary: "A job's donors",
      params: JobIdParams,
      responses: { 200: json('the donors seen by the job', DonorList), 404: unknownJob },
    },
  },
  {
    method: 'post',
    path: '/api/uploads',
    auth: true,
    body: 'raw',
    costly: true,
    handler: uploadText,
    doc: {
      summary: 'Upload a UTF-8 text to train on (name it as data.source "upload:<id>")',
      body: {
        description: 'the raw text, any Content-Type',
        required: true,
        contentType: 'text/plain',
        schema: PlainText,
      },
      responses: {
        201: json('the stored upload', Upload),
        400: failure('empty body, binary (NUL byte), invalid UTF-8 or whitespace-only text'),
        413: failure('body over the upload limit (32 MiB)'),
      },
    },
  },
  {
    method: 'get',
    path: '/api/metrics',
    auth: true,
    handler: metrics,
    doc: {
      summary: 'Prometheus metrics',
      responses: {
        200: { description: 'Prometheus text exposition format 0.0.4', contentType: 'text/plain', schema: PlainText },
      },
    },
  },
];
