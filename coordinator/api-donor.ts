// Donor routes (/api/donor/...): no token, and only what a donor must have to train: where to reach
// the coordinator's WebRTC peer, the running job's public settings, and its data shards.
import { Type, type Static } from '@sinclair/typebox';
import type { Request, Response } from 'express';
import { prepareJobData } from './corpus';
import { shardRange } from '../src/data/split';
import type { JobRecord, Store } from './store';
import { ApiError, getJobOr404, quote, type ApiContext, type ApiRoute } from './api-common';
import { Binary, DonorConfig, DonorJob, ShardParams, failure, json } from './api-schemas';

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function int32LE(a: Int32Array): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  const out = Buffer.alloc(a.byteLength);
  for (let i = 0; i < a.length; i++) out.writeInt32LE(a[i], 4 * i);
  return out;
}

/** Prepared data for donor routes; a failure here is the server's state, not the donor's request. */
async function donorData(store: Store, job: JobRecord) {
  try {
    return await prepareJobData(store, job);
  } catch (e) {
    throw new ApiError(500, `data of job ${quote(job.id)} is unavailable: ${(e as Error).message}`);
  }
}

function donorConfig({ donorConfig }: ApiContext, _req: Request, res: Response): void {
  if (!donorConfig) throw new ApiError(404, 'this coordinator runs no WebRTC peer, so donors cannot join it');
  const body: Static<typeof DonorConfig> = donorConfig;
  res.json(body);
}

async function donorJob({ store, runner }: ApiContext, _req: Request, res: Response): Promise<void> {
  const activeId = runner.activeJobId?.() ?? null;
  const active = activeId === null ? undefined : store.getJob(activeId);
  const job = active?.status === 'running' ? active : store.listJobs({ status: 'running' }).at(-1);
  if (!job) throw new ApiError(404, 'no job is running');
  const data = await donorData(store, job);
  const { model, train } = job.spec;
  const body: Static<typeof DonorJob> = {
    id: job.id,
    name: job.name,
    model: { ...model, vocab: job.vocab.length },
    vocab: job.vocab,
    train,
    shards: train.shards,
    trainTokens: data.train.length,
    version: job.version,
    round: job.round,
  };
  res.set('Cache-Control', 'no-store').json(body);
}

async function donorShard({ store }: ApiContext, req: Request, res: Response): Promise<void> {
  const job = getJobOr404(store, req.params.id);
  if (job.status !== 'running') throw new ApiError(404, `job ${quote(job.id)} is not running (status ${job.status})`);
  const shards = job.spec.train.shards;
  const raw = req.params.n;
  const n = /^\d{1,9}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(n >= 0 && n < shards)) {
    throw new ApiError(400, `shard must be an integer in [0, ${shards - 1}], got ${quote(raw)}`);
  }
  const data = await donorData(store, job);
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
}

const unavailable = failure("the job's data cannot be prepared");

export const DONOR_ROUTES: readonly ApiRoute[] = [
  {
    method: 'get',
    path: '/api/donor/config',
    auth: false,
    handler: donorConfig,
    doc: {
      summary: "Where to reach the coordinator's WebRTC peer",
      responses: {
        200: json('signalling path, peer id and ICE servers', DonorConfig),
        404: failure('this process runs no WebRTC peer (an API mounted without one, as in tests)'),
      },
    },
  },
  {
    method: 'get',
    path: '/api/donor/job',
    auth: false,
    handler: donorJob,
    doc: {
      summary: "The job donors train now: the runner's active job, else the oldest running one",
      responses: {
        200: json("the job's public settings", DonorJob),
        404: failure('no job is running'),
        500: unavailable,
      },
    },
  },
  {
    method: 'get',
    path: '/api/donor/jobs/:id/shards/:n',
    auth: false,
    handler: donorShard,
    doc: {
      summary: "One shard of a running job's training tokens",
      params: ShardParams,
      responses: {
        200: {
          description: "shard n's tokens as little-endian int32; cacheable, a job's data never changes",
          contentType: 'application/octet-stream',
          schema: Binary,
          headers: {
            'X-Starling-Tokens': { description: 'tokens in the shard', schema: Type.Integer({ minimum: 0 }) },
            'X-Starling-Shard-Range': {
              description: 'start-end of the shard in the training tokens',
              schema: Type.String({ pattern: '^\\d+-\\d+$' }),
            },
          },
        },
        400: failure('n is not an integer in [0, shards - 1]'),
        404: failure('unknown job id, or the job is not running'),
        500: unavailable,
      },
    },
  },
];
