// Per-IP request limits on the API (express-rate-limit, counted in memory per process). Three
// classes: every researcher route (generous: the console polls, scripts page through rounds), job
// creation and uploads on top (each loads and tokenizes a corpus of up to 32 MiB), and the donor
// routes with the OpenAPI document (no token, so anyone can call them). The donor limit is sized for
// a fleet of donors behind one address (a lab's NAT, or the e2e tests' loopback): each donor asks
// for the config, the job and its shard once per connection.
import { rateLimit, type RateLimitRequestHandler } from 'express-rate-limit';

export interface RateLimits {
  /** Requests per IP per window to researcher routes (all of them, counted together). */
  researcher: number;
  /** Of those, job creations and uploads per IP per window. */
  create: number;
  /** Requests per IP per window to donor routes and /api/openapi.json, counted together. */
  donor: number;
  /** The window, in milliseconds. */
  windowMs: number;
}

export const DEFAULT_RATE_LIMITS: RateLimits = { researcher: 600, create: 30, donor: 1200, windowMs: 60_000 };

function perWindow(ms: number): string {
  if (ms === 60_000) return 'minute';
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/** A limiter answering 429 JSON `{ error }` that names the limit and when to retry. */
export function limiter(what: string, limit: number, windowMs: number): RateLimitRequestHandler {
  return rateLimit({
    windowMs,
    limit,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    handler: (req, res) => {
      const reset = (req as { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
      const retry = reset ? Math.max(1, Math.ceil((reset.getTime() - Date.now()) / 1000)) : windowMs / 1000;
      res.status(429).json({
        error:
          `too many requests: the limit for ${what} is ${limit} per ${perWindow(windowMs)} per IP address; ` +
          `retry in ${retry} s`,
      });
    },
  });
}

/** The three limiters of one API router (each with its own counters). */
export function apiLimiters(limits: RateLimits) {
  const { windowMs } = limits;
  return {
    researcher: limiter('researcher routes', limits.researcher, windowMs),
    create: limiter('job creation and uploads', limits.create, windowMs),
    donor: limiter('donor routes', limits.donor, windowMs),
  };
}
