// Pieces every API route module shares: the error type and the one error handler that turns any
// failure into JSON `{ error }`, body parsing, parameter parsing and the route table's types.
// They live here, not in api.ts, so the route modules need not import the module that composes them;
// api.ts re-exports the public ones.
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { CorpusError, type DataRoots } from './corpus';
import { ID_RE, JobSpecError } from './job-spec';
import { StoreNotFoundError, type JobRecord, type Store } from './store';
import type { DonorConfig, RouteDoc } from './api-schemas';

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

/** What route handlers work with: the API's dependencies, resolved once per router. */
export interface ApiContext {
  store: Store;
  runner: JobRunner;
  dataDir: string;
  /** Where `file:` data sources may lie. */
  fileRoots: DataRoots;
  limits: ApiLimits;
  /** API responses by HTTP status since start (for /api/metrics). */
  responses: ReadonlyMap<number, number>;
  /** What GET /api/donor/config answers; absent when this process runs no WebRTC peer. */
  donorConfig?: DonorConfig;
}

export type RouteHandler = (ctx: ApiContext, req: Request, res: Response) => void | Promise<void>;

/** One route: how it is served and how it is documented (openapi.ts builds the document from these). */
export interface ApiRoute {
  method: 'get' | 'post';
  /** Express path, e.g. `/api/jobs/:id`. */
  path: string;
  /** Needs the researcher's bearer token. */
  auth: boolean;
  /** The body parser it needs: a JSON object (optional, `{}` when empty) or the raw bytes. */
  body?: 'json' | 'raw';
  /** Counts against the tighter creation limit too (it loads a corpus): job creation, uploads. */
  costly?: boolean;
  handler: RouteHandler;
  doc: RouteDoc;
}

const KiB = 1024;
const MiB = 1024 * KiB;

function humanBytes(n: number): string {
  if (n >= MiB && n % MiB === 0) return `${n / MiB} MiB`;
  if (n >= KiB && n % KiB === 0) return `${n / KiB} KiB`;
  return `${n} bytes`;
}

export function quote(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 77)}...` : s);
}

/** Runs a handler, sync or async, sending whatever it throws to the error handler. */
export function serve(ctx: ApiContext, fn: RouteHandler): RequestHandler {
  return (req, res, next) => {
    try {
      Promise.resolve(fn(ctx, req, res)).catch(next);
    } catch (e) {
      next(e);
    }
  };
}

/** A JSON route must say it is JSON; an empty body is allowed and means `{}`. */
function requireJsonIfBody(req: Request, _res: Response, next: NextFunction): void {
  const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  if (hasBody && !req.is(['application/json', '+json'])) {
    next(new ApiError(415, `Content-Type must be application/json, got ${quote(req.get('content-type') ?? '(none)')}`));
    return;
  }
  next();
}

/**
 * Bodies are accepted uncompressed only: a compressed body would be inflated before its size is
 * known, and a `gzip` label on plain bytes would fail deep in zlib. Any other encoding is a 415.
 */
function refuseContentEncoding(req: Request, _res: Response, next: NextFunction): void {
  const enc = (req.get('content-encoding') ?? 'identity').trim().toLowerCase();
  if (enc !== 'identity' && enc !== '') {
    const got = quote(req.get('content-encoding') ?? '');
    next(
      new ApiError(
        415,
        `Content-Encoding ${got} is not accepted: send the body uncompressed, without Content-Encoding`,
      ),
    );
    return;
  }
  next();
}

/** Middleware that parses the body a route declares, within the API's size limits. */
export function bodyParsers(kind: ApiRoute['body'], limits: ApiLimits): RequestHandler[] {
  if (kind === 'json') {
    const json = express.json({ limit: limits.jsonBytes, strict: false, type: ['application/json', '+json'] });
    return [refuseContentEncoding, requireJsonIfBody, json];
  }
  if (kind === 'raw') return [refuseContentEncoding, express.raw({ limit: limits.uploadBytes, type: () => true })];
  return [];
}

export function parseIntParam(name: string, raw: unknown, lo: number, hi: number, dflt: number): number {
  if (raw === undefined) return dflt;
  const v = typeof raw === 'string' && /^-?\d{1,15}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isInteger(v) || v < lo || v > hi) {
    throw new ApiError(
      400,
      `${name} must be an integer in [${lo}, ${hi}], got ` +
        `${quote(typeof raw === 'string' ? raw : (JSON.stringify(raw) ?? typeof raw))}`,
    );
  }
  return v;
}

export function getJobOr404(store: Store, id: string): JobRecord {
  const job = ID_RE.test(id) ? store.getJob(id) : undefined;
  if (!job) throw new ApiError(404, `unknown job id ${quote(id)}`);
  return job;
}

/** The API's error handler: every failure answers JSON `{ error }` with a status saying whose fault it was. */
export function apiErrorHandler(log: (line: string) => void) {
  return (err: unknown, req: Request, res: Response, next: NextFunction): void => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const e = err as Error & { type?: string; status?: number; expose?: boolean; limit?: number; length?: number };
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
      const limit = humanBytes(e.limit ?? 0);
      message = `request body too large (${size}): the limit for ${req.method} ${req.path} is ${limit}`;
    } else if (e?.type === 'entity.parse.failed') {
      status = 400;
      message = `malformed JSON body: ${e.message}`;
    } else if (e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported') {
      status = 415;
      message = e.message;
    } else if (e?.type === 'request.aborted' || e?.type === 'request.size.invalid') {
      status = 400;
      message = e.message;
    } else if (e instanceof URIError) {
      // express decodes path parameters before any handler runs: `/api/jobs/%ff` throws here.
      status = 400;
      message = `malformed URL escape in path ${quote(req.originalUrl.split('?')[0])}: not valid percent-encoded UTF-8`;
    } else if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500 && e.expose !== false) {
      // Any other client error raised by express or body-parser (http-errors): the client's fault, no stack.
      status = e.status;
      message = e.message;
    } else {
      message = `internal error: ${e?.message ?? String(err)}`;
      log(`api: ${req.method} ${req.path} failed: ${e?.stack ?? String(err)}`);
    }
    res.status(status).json({ error: message });
  };
}

/** JSON 404 for /api paths no route answered; mount after every /api route. */
export const apiNotFound: RequestHandler = (req, res, next) => {
  if (req.path === '/api' || req.path.startsWith('/api/')) {
    res.status(404).json({ error: `no route ${req.method} ${req.path}` });
    return;
  }
  next();
};
