// The coordinator's HTTP API, as an express Router with full `/api/...` paths (mount it with
// `app.use(createApiRouter(deps))`, and `app.use(apiNotFound)` after every other /api route).
//
// Researcher routes need `Authorization: Bearer <token>`; donor routes (/api/donor/...) need none and
// expose only what a donor must have to train: the running job's public settings and its data shards.
// Every failure is JSON `{ error }` with a status that says whose fault it was, every body has a size
// limit, and no bad request can take the server down.
//
// Status transitions: the API sets 'running' before it calls runner.startJob/resumeJob and 'stopped'
// after runner.stopJob resolves; the runner records 'done' and 'failed' (and progress) itself.
import express, { type NextFunction, type Request, type RequestHandler, type Response, type Router } from 'express';
import { existsSync } from 'node:fs';
import { requireToken } from './auth';
import { checkpointPaths } from './checkpoint';
import { buildJobData, cacheJobData, CorpusError, decodeText, loadCorpus, prepareJobData, sha256Hex } from './corpus';
import { ID_RE, JobSpecError, MAX_CORPUS_BYTES, jobModelConfig, parseJobSpec } from './job-spec';
import { modelParamCount } from '../src/model/model';
import { shardRange } from '../src/data/split';
import { StoreNotFoundError, type JobRecord, type JobStatus, type Store } from './store';

export { prepareJobData, type JobData } from './corpus';

export interface JobRunner {
  startJob(jobId: string): Promise<void>;
  stopJob(jobId: string): Promise<void>;
  resumeJob(jobId: string): Promise<void>;
  /** Live state for GET /api/jobs/:id (donors, round in progress, …); undefined when not running. */
  liveStatus(jobId: string): unknown;
  /**
   * The job donors are training now, when the runner runs one at a time and knows it. Without
   * it, GET /api/donor/job names the oldest running job.
   */
  activeJobId?(): string | null;
}

export interface ApiLimits {
  /** Largest JSON body (job specs). */
  jsonBytes: number;
  /** Largest uploaded corpus. */
  uploadBytes: number;
}

export const DEFAULT_LIMITS: ApiLimits = { jsonBytes: 64 * 1024, uploadBytes: MAX_CORPUS_BYTES };

export interface ApiDeps {
  store: Store;
  runner: JobRunner;
  token: string;
  dataDir: string;
  limits?: Partial<ApiLimits>;
  /** Where unexpected (500) errors are logged; default console.error. */
  log?: (line: string) => void;
}

/** An error with the HTTP status to answer; a runner may throw one (e.g. 409) to refuse a start. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

const KiB = 1024;
const MiB = 1024 * KiB;

function humanBytes(n: number): string {
  if (n >= MiB && n % MiB === 0) return `${n / MiB} MiB`;
  if (n >= KiB && n % KiB === 0) return `${n / KiB} KiB`;
  return `${n} bytes`;
}

function quote(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 77)}...` : s);
}

const asyncRoute =
  (fn: (req: Request, res: Response) => Promise<void>): RequestHandler =>
  (req, res, next) => {
    fn(req, res).catch(next);
  };

/** A JSON route must say it is JSON; an empty body is allowed and means `{}`. */
function requireJsonIfBody(req: Request, _res: Response, next: NextFunction): void {
  const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  if (hasBody && !req.is(['application/json', '+json'])) {
    next(new ApiError(415, `Content-Type must be application/json, got ${quote(req.get('content-type') ?? '(none)')}`));
    return;
  }
  next();
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function int32LE(a: Int32Array): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  const out = Buffer.alloc(a.byteLength);
  for (let i = 0; i < a.length; i++) out.writeInt32LE(a[i], 4 * i);
  return out;
}

function jobSummary(job: JobRecord) {
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

function parseIntParam(name: string, raw: unknown, lo: number, hi: number, dflt: number): number {
  if (raw === undefined) return dflt;
  const v = typeof raw === 'string' && /^-?\d{1,15}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isInteger(v) || v < lo || v > hi) {
    throw new ApiError(400, `${name} must be an integer in [${lo}, ${hi}], got ${quote(String(raw))}`);
  }
  return v;
}

export function createApiRouter(deps: ApiDeps): Router {
  const { store, runner, dataDir } = deps;
  const limits: ApiLimits = { ...DEFAULT_LIMITS, ...deps.limits };
  const log = deps.log ?? ((line: string) => console.error(line));
  const auth = requireToken(deps.token);
  const responses = new Map<number, number>();
  const router = express.Router();

  router.use('/api', (_req, res, next) => {
    res.on('finish', () => responses.set(res.statusCode, (responses.get(res.statusCode) ?? 0) + 1));
    next();
  });

  function getJobOr404(id: string): JobRecord {
    const job = ID_RE.test(id) ? store.getJob(id) : undefined;
    if (!job) throw new ApiError(404, `unknown job id ${quote(id)}`);
    return job;
  }

  /** Marks the job failed and turns the runner's error into the response. */
  function runnerFailed(job: JobRecord, action: string, e: unknown): ApiError {
    const msg = (e as Error)?.message ?? String(e);
    store.setJobStatus(job.id, 'failed', `${action} failed: ${msg}`);
    const status = e instanceof ApiError ? e.status : 500;
    return new ApiError(status, `job ${quote(job.id)} could not ${action}: ${msg}`);
  }

  // ---- researcher routes ----

  router.post(
    '/api/jobs',
    auth,
    requireJsonIfBody,
    express.json({ limit: limits.jsonBytes, strict: false, type: ['application/json', '+json'] }),
    asyncRoute(async (req, res) => {
      const spec = parseJobSpec(req.body);
      // Load and tokenize now, so a bad source or a corpus that does not fit fails the request.
      const corpus = await loadCorpus(spec.data.source, { maxBytes: spec.data.maxBytes, store });
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
        throw runnerFailed(created, 'start', e);
      }
      res.status(201).json({ ...jobSummary(store.getJob(created.id)!), corpus: data.description });
    }),
  );

  router.get('/api/jobs', auth, (_req, res) => {
    res.json({ jobs: store.listJobs().map(jobSummary) });
  });

  router.get('/api/jobs/:id', auth, (req, res) => {
    const job = getJobOr404(req.params.id);
    let live: unknown = null;
    try {
      live = runner.liveStatus(job.id) ?? null;
    } catch (e) {
      live = { error: `live status unavailable: ${(e as Error).message}` };
    }
    const hasCheckpoint = existsSync(checkpointPaths(dataDir, job.id).latest);
    res.json({
      ...jobSummary(job),
      vocab: job.vocab,
      checkpoint: hasCheckpoint ? `/api/jobs/${job.id}/checkpoint` : null,
      live,
    });
  });

  router.post(
    '/api/jobs/:id/stop',
    auth,
    asyncRoute(async (req, res) => {
      const job = getJobOr404(req.params.id);
      if (job.status !== 'running') throw new ApiError(409, `job ${quote(job.id)} is not running (status ${job.status})`);
      await runner.stopJob(job.id);
      res.json(jobSummary(store.setJobStatus(job.id, 'stopped')));
    }),
  );

  router.post(
    '/api/jobs/:id/resume',
    auth,
    asyncRoute(async (req, res) => {
      const job = getJobOr404(req.params.id);
      const resumable: JobStatus[] = ['stopped', 'failed'];
      if (!resumable.includes(job.status)) {
        throw new ApiError(409, `job ${quote(job.id)} cannot be resumed: it is ${job.status} (only stopped or failed jobs resume)`);
      }
      store.setJobStatus(job.id, 'running', null);
      try {
        await runner.resumeJob(job.id);
      } catch (e) {
        throw runnerFailed(job, 'resume', e);
      }
      res.json(jobSummary(store.getJob(job.id)!));
    }),
  );

  router.get('/api/jobs/:id/checkpoint', auth, (req, res, next) => {
    const job = getJobOr404(req.params.id);
    const path = checkpointPaths(dataDir, job.id).latest;
    // Checkpoints are replaced by rename, so the file sendFile opens is always a whole one.
    res.sendFile(
      path,
      {
        headers: {
          'Content-Type': 'application/octet-stream',
          'Content-Disposition': `attachment; filename="starling-${job.id}.safetensors"`,
          'Cache-Control': 'no-store',
        },
        etag: false,
        lastModified: false,
      },
      (err) => {
        if (!err) return;
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          if (!res.headersSent) next(new ApiError(404, `job ${quote(job.id)} has no checkpoint yet`));
        } else {
          next(err);
        }
      },
    );
  });

  router.get('/api/jobs/:id/rounds', auth, (req, res) => {
    const job = getJobOr404(req.params.id);
    // Rounds are 0-based; `after` = -1 (the default) lists from the first.
    const after = parseIntParam('after', req.query.after, -1, Number.MAX_SAFE_INTEGER, -1);
    const limit = parseIntParam('limit', req.query.limit, 1, 10_000, 1000);
    res.json({ jobId: job.id, rounds: store.listRounds(job.id, { afterRound: after, limit }) });
  });

  router.get('/api/jobs/:id/donors', auth, (req, res) => {
    const job = getJobOr404(req.params.id);
    res.json({ jobId: job.id, donors: store.listDonors(job.id) });
  });

  router.post(
    '/api/uploads',
    auth,
    express.raw({ limit: limits.uploadBytes, type: () => true }),
    asyncRoute(async (req, res) => {
      const body: unknown = req.body;
      if (!Buffer.isBuffer(body) || body.length === 0) {
        throw new ApiError(400, 'upload is empty: send the UTF-8 text as the request body');
      }
      decodeText(body, 'upload'); // refuse binary or non-UTF-8 now rather than at job creation
      const rec = await store.saveUpload(body);
      res.status(201).json({ id: rec.id, bytes: rec.bytes, sha256: rec.sha256, source: `upload:${rec.id}` });
    }),
  );

  router.get('/api/metrics', auth, (_req, res) => {
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
      "Bytes per assigned donor in a running job's last round (up: its update; down: broadcast step or snapshot, and assignment).",
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
  });

  // ---- donor routes (no token) ----

  router.get(
    '/api/donor/job',
    asyncRoute(async (_req, res) => {
      const activeId = runner.activeJobId?.() ?? null;
      const active = activeId === null ? undefined : store.getJob(activeId);
      const job = active?.status === 'running' ? active : store.listJobs({ status: 'running' }).at(-1);
      if (!job) throw new ApiError(404, 'no job is running');
      const data = await donorData(job);
      const { model, train } = job.spec;
      res.set('Cache-Control', 'no-store').json({
        id: job.id,
        name: job.name,
        model: { ...model, vocab: job.vocab.length },
        vocab: job.vocab,
        train: {
          rounds: train.rounds,
          localSteps: train.localSteps,
          batch: train.batch,
          lr: train.lr,
          weightDecay: train.weightDecay,
          beta1: train.beta1,
          beta2: train.beta2,
          gradClip: train.gradClip ?? 0,
          roundDeadlineMs: train.roundDeadlineMs,
          seed: train.seed,
          codec: train.codec ?? 'int8',
          downCodec: train.downCodec ?? 'f32',
          outerLr: train.outerLr,
          outerMomentum: train.outerMomentum ?? 0,
          errorDecay: train.errorDecay ?? 1,
        },
        shards: train.shards,
        trainTokens: data.train.length,
        version: job.version,
        round: job.round,
      });
    }),
  );

  router.get(
    '/api/donor/jobs/:id/shards/:n',
    asyncRoute(async (req, res) => {
      const job = getJobOr404(req.params.id);
      if (job.status !== 'running') throw new ApiError(404, `job ${quote(job.id)} is not running (status ${job.status})`);
      const shards = job.spec.train.shards;
      const raw = req.params.n;
      const n = /^\d{1,9}$/.test(raw) ? Number(raw) : Number.NaN;
      if (!(n >= 0 && n < shards)) {
        throw new ApiError(400, `shard must be an integer in [0, ${shards - 1}], got ${quote(raw)}`);
      }
      const data = await donorData(job);
      const [start, end] = shardRange(data.train.length, n, shards);
      res
        .set({
          'Content-Type': 'application/octet-stream',
          // A job's data never changes (its corpus hash is checked), so a shard can be cached.
          'Cache-Control': 'private, max-age=86400, immutable',
          'X-Starling-Tokens': String(end - start),
          'X-Starling-Shard-Range': `${start}-${end}`,
        })
        .send(int32LE(data.train.subarray(start, end)));
    }),
  );

  /** Prepared data for donor routes; a failure here is the server's state, not the donor's request. */
  async function donorData(job: JobRecord) {
    try {
      return await prepareJobData(store, job);
    } catch (e) {
      throw new ApiError(500, `data of job ${quote(job.id)} is unavailable: ${(e as Error).message}`);
    }
  }

  // ---- errors ----

  router.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const e = err as Error & { type?: string; status?: number; limit?: number; length?: number };
    let status = 500;
    let message: string;
    if (e instanceof ApiError) {
      status = e.status;
      message = e.message;
    } else if (e instanceof JobSpecError || e instanceof CorpusError) {
      status = 400;
      message = e.message;
    } else if (e instanceof StoreNotFoundError) {
      status = 404;
      message = e.message;
    } else if (e?.type === 'entity.too.large') {
      status = 413;
      const size = e.length !== undefined && Number.isFinite(e.length) ? `${e.length} bytes` : 'larger than allowed';
      message = `request body too large (${size}): the limit for ${req.method} ${req.path} is ${humanBytes(e.limit ?? 0)}`;
    } else if (e?.type === 'entity.parse.failed') {
      status = 400;
      message = `malformed JSON body: ${e.message}`;
    } else if (e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported') {
      status = 415;
      message = e.message;
    } else if (e?.type === 'request.aborted' || e?.type === 'request.size.invalid') {
      status = 400;
      message = e.message;
    } else {
      message = `internal error: ${e?.message ?? String(err)}`;
      log(`api: ${req.method} ${req.path} failed: ${e?.stack ?? String(err)}`);
    }
    res.status(status).json({ error: message });
  });

  return router;
}

/** JSON 404 for /api paths no route answered; mount after every /api route. */
export const apiNotFound: RequestHandler = (req, res, next) => {
  if (req.path === '/api' || req.path.startsWith('/api/')) {
    res.status(404).json({ error: `no route ${req.method} ${req.path}` });
    return;
  }
  next();
};
