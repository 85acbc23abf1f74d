// Every protocol message header, once (src/protocol/messages.ts holds the kind table and body rules).
// The `job` header carries the job spec's `train` object whole (JobTrain), so a new training setting
// travels from spec to worker without a copy list anywhere.
import { Type, type Static, type TProperties } from '@sinclair/typebox';
import { MAX_PARAMS } from './limits';
import { MAX_CODEC_NAME } from '../compress/codec-spec';
import { idSchema } from '../schema/id';
import { JobTrain } from '../schema/job';
import { ModelConfig } from '../schema/model';

const closed = <P extends TProperties>(p: P) => Type.Object(p, { additionalProperties: false });
const int = (minimum: number, maximum: number = Number.MAX_SAFE_INTEGER) => Type.Integer({ minimum, maximum });
const str = (minLength: number, maxLength: number) => Type.String({ minLength, maxLength });
const oneOf = <const T extends string[]>(...values: T) => Type.Union(values.map((v) => Type.Literal(v)));

const Id = idSchema();
const Count = int(0);
/** A codec name in src/compress/codec-spec.ts's grammar; receivers check it with checkCodecName. */
const Codec = Type.String({ minLength: 1, maxLength: MAX_CODEC_NAME });

export const HelloHeader = closed({ donorId: Id, adapter: str(0, 200), userAgent: str(0, 300), protocol: int(1, 255) });
export type HelloHeader = Static<typeof HelloHeader>;

export const ReadyHeader = closed({
  jobId: Id,
  /** Weights version the donor holds, -1 for none. */
  version: int(-1),
});
export type ReadyHeader = Static<typeof ReadyHeader>;

export const UpdateHeader = closed({
  jobId: Id,
  round: Count,
  baseVersion: Count,
  steps: int(1, 1_000_000),
  loss: Type.Number(),
  tokens: Count,
  codec: Codec,
  /** Parameter count of the (decoded) update. */
  n: int(1, MAX_PARAMS),
  computeMs: Type.Number({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
});
export type UpdateHeader = Static<typeof UpdateHeader>;

export const DonorState = oneOf('training', 'paused', 'idle');
export type DonorState = Static<typeof DonorState>;
export const StatusHeader = closed({ state: DonorState, detail: Type.Optional(str(0, 200)) });
export type StatusHeader = Static<typeof StatusHeader>;

export const Vocab = Type.Array(str(1, 8), { minItems: 2, maxItems: 4096, expected: 'an array of 2..4096 strings' });

export const JobHeader = closed({
  jobId: Id,
  name: str(1, 200),
  /** The model with its vocabulary size. */
  model: ModelConfig,
  /** The tokenizer's characters; vocab[i] is token i. */
  vocab: Vocab,
  /** The job spec's train section as parsed: inner optimizer, rounds, shards, codecs, seed. */
  train: JobTrain,
});
export type JobHeader = Static<typeof JobHeader>;

export const WeightsHeader = closed({ jobId: Id, version: Count, n: int(1, MAX_PARAMS), encoding: oneOf('f32') });
export type WeightsHeader = Static<typeof WeightsHeader>;

/** The broadcast step θ_version = θ_baseVersion − decode(body), for donors that hold baseVersion. */
export const AssignHeader = closed({
  jobId: Id,
  round: Count,
  version: Count,
  shard: int(0, 999_999),
  steps: int(1, 1_000_000),
  seed: int(0, 0xffffffff),
  /** Milliseconds from receipt until the update is due. */
  deadlineMs: Type.Number({ exclusiveMinimum: 0, maximum: 86_400_000 }),
});
export type AssignHeader = Static<typeof AssignHeader>;

export const IdleHeader = closed({ reason: str(1, 200) });
export type IdleHeader = Static<typeof IdleHeader>;
export const ErrorHeader = closed({ message: str(1, 1000) });
export type ErrorHeader = Static<typeof ErrorHeader>;

/** A liveness beat, each side on its own timer (src/protocol/heartbeat.ts): no fields, no reply. */
export const BeatHeader = closed({});
export type BeatHeader = Static<typeof BeatHeader>;

/** Each kind's header schema. */
export const HEADERS = {
  hello: HelloHeader,
  ready: ReadyHeader,
  update: UpdateHeader,
  status: StatusHeader,
  ping: BeatHeader,
  job: JobHeader,
  weights: WeightsHeader,
  assign: AssignHeader,
  idle: IdleHeader,
  error: ErrorHeader,
  pong: BeatHeader,
};
