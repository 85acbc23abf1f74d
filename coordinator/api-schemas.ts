// TypeBox schemas of the HTTP API: route parameters, request bodies and JSON answers. Route modules
// type their answers with `Static<...>` of these, so an answer that drifts from its schema fails to
// compile, and openapi.ts turns them into the OpenAPI document served at /api/openapi.json.
// Requests are still checked by hand (parseJobSpec, parseIntParam) so that every error message names
// the field exactly as before; the schemas describe what those checks accept.
import { Type, type Static, type TObject, type TSchema } from '@sinclair/typebox';
import { JobSpec, JobSpecInput, JobTrain } from '../src/schema/job';
import { ModelConfig } from '../src/schema/model';
import { idSchema } from '../src/schema/id';
import { JOB_STATUSES } from './store';

export { JobSpecInput };

/** Every failure: a message naming what was wrong. */
export const ErrorBody = Type.Object({ error: Type.String({ description: 'what went wrong' }) });

const Millis = (description: string) => Type.Integer({ description: `${description} (ms since the epoch)` });
const Id = idSchema('a job id (12 hex characters when created)');

export const JobStatus = Type.Union(
  JOB_STATUSES.map((s) => Type.Literal(s)),
  { description: 'running (queued or training), stopped, done or failed' },
);

export const JobSummary = Type.Object({
  id: Id,
  name: Type.String(),
  status: JobStatus,
  createdAt: Millis('created'),
  updatedAt: Millis('last changed'),
  version: Type.Integer({ minimum: 0, description: 'weights version (0: the initial weights)' }),
  round: Type.Integer({ minimum: 0, description: 'rounds completed' }),
  rounds: Type.Integer({ minimum: 1, description: 'spec.train.rounds' }),
  vocabSize: Type.Integer({ minimum: 1, description: 'distinct characters in the text' }),
  params: Type.Integer({ minimum: 1, description: "the model's parameter count" }),
  lastError: Type.Union([Type.String(), Type.Null()], { description: 'why the job failed, if it did' }),
  /** The spec with every default filled in. */
  spec: JobSpec,
});

export const CreatedJob = Type.Intersect([
  JobSummary,
  Type.Object({ corpus: Type.String({ description: 'a description of the text used' }) }),
]);

export const JobDetail = Type.Intersect([
  JobSummary,
  Type.Object({
    vocab: Type.Array(Type.String(), { description: 'the characters, in token order' }),
    checkpoint: Type.Union([Type.String(), Type.Null()], {
      description: 'download path of the latest checkpoint; null before the first',
    }),
    live: Type.Unknown({
      description:
        "the runner's live state: { active: true, round, version, donors } while it trains, " +
        'else { active: false, queued, donors: [] }; null when the runner has none',
    }),
  }),
]);

export const JobList = Type.Object({ jobs: Type.Array(JobSummary, { description: 'newest first' }) });

export const RoundRecord = Type.Object({
  jobId: Id,
  round: Type.Integer({ minimum: 0 }),
  version: Type.Integer({ minimum: 0, description: 'weights version after the round' }),
  startedAt: Millis('started'),
  endedAt: Millis('ended'),
  assigned: Type.Integer({ minimum: 0, description: 'donors given work' }),
  accepted: Type.Integer({ minimum: 0 }),
  late: Type.Integer({ minimum: 0 }),
  dropped: Type.Integer({ minimum: 0 }),
  rejected: Type.Integer({ minimum: 0 }),
  bytesUp: Type.Number({ minimum: 0 }),
  bytesDown: Type.Number({ minimum: 0 }),
  trainLoss: Type.Union([Type.Number(), Type.Null()]),
  valLoss: Type.Union([Type.Number(), Type.Null()]),
  refused: Type.Union([Type.String(), Type.Null()], {
    description: "why the round's step was refused (the version did not advance); null when it was taken",
  }),
});

export const RoundList = Type.Object({ jobId: Id, rounds: Type.Array(RoundRecord, { description: 'oldest first' }) });

export const DonorRecord = Type.Object({
  id: Type.String(),
  jobId: Type.Union([Type.String(), Type.Null()]),
  adapter: Type.String({ description: 'the GPU adapter the donor reported' }),
  firstSeen: Millis('first seen'),
  lastSeen: Millis('last seen'),
  roundsContributed: Type.Integer({ minimum: 0 }),
  bytesUp: Type.Number({ minimum: 0 }),
  bytesDown: Type.Number({ minimum: 0 }),
  state: Type.String(),
});

export const DonorList = Type.Object({ jobId: Id, donors: Type.Array(DonorRecord) });

export const Upload = Type.Object({
  id: Type.String(),
  bytes: Type.Integer({ minimum: 1 }),
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  source: Type.String({ description: 'the job spec data.source naming this text: "upload:<id>"' }),
});

export const DonorConfig = Type.Object({
  peerPath: Type.String({ description: 'path of the PeerJS signalling server on this origin' }),
  coordinatorPeerId: Type.String({ description: "the coordinator's WebRTC peer id" }),
  iceServers: Type.Array(
    Type.Object({
      urls: Type.Union([Type.String(), Type.Array(Type.String())]),
      username: Type.Optional(Type.String()),
      credential: Type.Optional(Type.String()),
    }),
    { description: 'RTCIceServer entries; empty on loopback or a LAN' },
  ),
  heartbeat: Type.Optional(
    Type.Object(
      {
        intervalMs: Type.Integer({ minimum: 1, description: 'beat period on the data channel, each way' }),
        timeoutMs: Type.Integer({ minimum: 1, description: 'silence after which a side gives the other up' }),
      },
      { description: "the coordinator's heartbeat (docs/PROTOCOL.md, Liveness); donors use it unless told otherwise" },
    ),
  ),
});
export type DonorConfig = Static<typeof DonorConfig>;

export const DonorJob = Type.Object({
  id: Id,
  name: Type.String(),
  model: ModelConfig,
  vocab: Type.Array(Type.String()),
  /** The job spec's train section, whole (as the job message carries it). */
  train: JobTrain,
  shards: Type.Integer({ minimum: 1 }),
  trainTokens: Type.Integer({ minimum: 0, description: 'training tokens, over all shards' }),
  version: Type.Integer({ minimum: 0 }),
  round: Type.Integer({ minimum: 0 }),
});

/** Path parameter `:id`. */
export const JobIdParams = Type.Object({ id: Type.String({ description: 'the job id' }) });

export const ShardParams = Type.Object({
  id: Type.String({ description: 'the job id' }),
  n: Type.Integer({ minimum: 0, description: 'the shard, in [0, shards - 1]' }),
});

export const RoundsQuery = Type.Object({
  after: Type.Optional(
    Type.Integer({
      minimum: -1,
      maximum: Number.MAX_SAFE_INTEGER,
      default: -1,
      description: 'list rounds after this one (-1: from round 0)',
    }),
  ),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, default: 1000, description: 'at most this many' })),
});

/** GET /api/openapi.json; described loosely, the document is its own description. */
export const OpenApiDocument = Type.Object(
  { openapi: Type.Literal('3.1.0'), info: Type.Object({}), paths: Type.Object({}), components: Type.Object({}) },
  { additionalProperties: true },
);

/** Raw bytes (checkpoints, shards). */
export const Binary = Type.String({ contentMediaType: 'application/octet-stream' });
export const PlainText = Type.String();

/** Named schemas: the document lists them under components.schemas and refers to them by $ref. */
export const COMPONENTS: Record<string, TSchema> = {
  Error: ErrorBody,
  JobSpecInput,
  JobStatus,
  JobSummary,
  CreatedJob,
  JobDetail,
  JobList,
  RoundRecord,
  RoundList,
  DonorRecord,
  DonorList,
  Upload,
  DonorConfig,
  DonorJob,
};

// ---- route documentation (openapi.ts turns these into operations) ----

export interface ResponseDoc {
  description: string;
  /** Default application/json. */
  contentType?: string;
  schema?: TSchema;
  headers?: Record<string, { description: string; schema: TSchema }>;
}

export interface RouteDoc {
  summary: string;
  description?: string;
  /** Path parameters, named as in the express path. */
  params?: TObject;
  query?: TObject;
  body?: { description: string; required: boolean; contentType: string; schema: TSchema };
  /** Answers by status; openapi.ts adds 401 to every route needing the token, and 500 where not listed. */
  responses: Record<number, ResponseDoc>;
}

/** A JSON answer. */
export const json = (description: string, schema: TSchema): ResponseDoc => ({ description, schema });

/** A failure answer: `{ error }`. */
export const failure = (description: string): ResponseDoc => ({ description, schema: ErrorBody });
