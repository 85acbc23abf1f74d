// The coordinator's HTTP API, as an express Router with full `/api/...` paths (mount it with
// `app.use(createApiRouter(deps))`, and `app.use(apiNotFound)` after every other /api route).
//
// Researcher routes (api-researcher.ts) need `Authorization: Bearer <token>`; donor routes
// (api-donor.ts, /api/donor/...) need none. Both are tables of small handlers with their documentation;
// this module mounts them with their auth and body parsers, serves the OpenAPI document built from the
// same tables at /api/openapi.json, and ends with the one error handler. Every failure is JSON
// `{ error }` with a status that says whose fault it was, every body has a size limit, and no bad
// request can take the server down.
import express, { type Router } from 'express';
import { requireToken } from './auth';
import { MAX_CORPUS_BYTES } from './job-spec';
import type { Store } from './store';
import {
  apiErrorHandler,
  bodyParsers,
  serve,
  type ApiContext,
  type ApiLimits,
  type ApiRoute,
  type JobRunner,
} from './api-common';
import { OpenApiDocument, type DonorConfig } from './api-schemas';
import { RESEARCHER_ROUTES } from './api-researcher';
import { DONOR_ROUTES } from './api-donor';
import { buildOpenApi } from './openapi';
import { dataRoots, setDataRoots } from './corpus';
import { apiLimiters, DEFAULT_RATE_LIMITS, type RateLimits } from './rate-limits';

export { ApiError, apiErrorHandler, apiNotFound, type ApiLimits, type JobRunner } from './api-common';
export { prepareJobData, type JobData } from './corpus';
export { DEFAULT_RATE_LIMITS, type RateLimits } from './rate-limits';

export const DEFAULT_LIMITS: ApiLimits = { jsonBytes: 64 * 1024, uploadBytes: MAX_CORPUS_BYTES };

export interface ApiDeps {
  store: Store;
  runner: JobRunner;
  token: string;
  dataDir: string;
  /**
   * Folders besides dataDir that `file:` data sources may name (`starling serve --data-root`);
   * each must exist. Files anywhere else are refused, after `..` and symlinks are resolved.
   */
  dataRoots?: readonly string[];
  limits?: Partial<ApiLimits>;
  /** Per-IP request limits (rate-limits.ts); default DEFAULT_RATE_LIMITS. */
  rateLimits?: Partial<RateLimits>;
  /** What GET /api/donor/config answers (the coordinator's WebRTC peer); without it that route is a 404. */
  donorConfig?: DonorConfig;
  /** Where unexpected (500) errors are logged; default console.error. */
  log?: (line: string) => void;
}

const OPENAPI_ROUTE: ApiRoute = {
  method: 'get',
  path: '/api/openapi.json',
  auth: false,
  handler: function openApi(_ctx, _req, res) {
    res.json(openApiDocument());
  },
  doc: {
    summary: 'This OpenAPI 3.1 document',
    responses: { 200: { description: 'the OpenAPI document of every /api route', schema: OpenApiDocument } },
  },
};

/** Every route the API serves, in mounting order. */
export const API_ROUTES: readonly ApiRoute[] = [...RESEARCHER_ROUTES, ...DONOR_ROUTES, OPENAPI_ROUTE];

let openApiCache: object | undefined;

/** The OpenAPI document of API_ROUTES (built once: the routes are fixed at load). */
export function openApiDocument(): object {
  openApiCache ??= buildOpenApi(API_ROUTES);
  return openApiCache;
}

export function createApiRouter(deps: ApiDeps): Router {
  const responses = new Map<number, number>();
  const fileRoots = dataRoots(deps.dataDir, deps.dataRoots);
  // The runner and the donor routes reload corpora through prepareJobData: the same roots apply.
  setDataRoots(deps.store, fileRoots);
  const ctx: ApiContext = {
    store: deps.store,
    runner: deps.runner,
    dataDir: deps.dataDir,
    fileRoots,
    limits: { ...DEFAULT_LIMITS, ...deps.limits },
    responses,
    donorConfig: deps.donorConfig,
  };
  const auth = [requireToken(deps.token)];
  const limit = apiLimiters({ ...DEFAULT_RATE_LIMITS, ...deps.rateLimits });
  const router = express.Router();

  router.use('/api', (_req, res, next) => {
    res.on('finish', () => responses.set(res.statusCode, (responses.get(res.statusCode) ?? 0) + 1));
    next();
  });
  for (const route of API_ROUTES) {
    // Limits come before the token check, so guessing tokens is limited too.
    const limits = route.auth ? [limit.researcher, ...(route.costly ? [limit.create] : [])] : [limit.donor];
    const guard = route.auth ? auth : [];
    const parse = bodyParsers(route.body, ctx.limits);
    router[route.method](route.path, ...limits, ...guard, ...parse, serve(ctx, route.handler));
  }
  router.use(apiErrorHandler(deps.log ?? ((line: string) => console.error(line))));
  return router;
}
