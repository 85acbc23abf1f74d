// The message kinds exchanged between donor and coordinator, and their validation. A message is
// { kind, header (JSON object), body? (bytes) }. Every header field is checked for type and range,
// unknown fields are rejected (a typo must not silently fall back to a default), and body sizes are
// checked exactly wherever the header determines them.
//
// Update bodies: the protocol stays independent of the compression codecs, so it only knows that an
// `update` body is non-empty. Receivers that know the codec pass `updateBodyBytes` (for int8, the
// codec's `encodedBytes(n)`) and get an exact length check before anything is decoded.
import { validateMlpConfig } from '../model/mlp-spec';
import { validateGptConfig } from '../model/gpt-spec';
import type { ModelConfig } from '../model/model';
import { ProtocolError } from './errors';
import { MAX_PARAMS } from './limits';
import { checkCodecName } from '../sync/job-codec';

export { PROTOCOL_VERSION } from './limits';

export type DonorState = 'training' | 'paused' | 'idle';
/** A codec name in src/compress/codec-spec.ts's grammar (e.g. 'q4', 'topk:0.01/q2', 'powersgd:2'). */
export type UpdateCodec = string;

export interface HelloHeader {
  donorId: string;
  adapter: string;
  userAgent: string;
  protocol: number;
}
export interface ReadyHeader {
  jobId: string;
  /** Weights version the donor holds, -1 for none. */
  version: number;
}
export interface UpdateHeader {
  jobId: string;
  round: number;
  baseVersion: number;
  steps: number;
  loss: number;
  tokens: number;
  codec: UpdateCodec;
  /** Parameter count of the (decoded) update. */
  n: number;
  computeMs: number;
}
export interface StatusHeader {
  state: DonorState;
  detail?: string;
}
/** The model with its vocabulary size: an MLP or a GPT config (src/model/model.ts). */
export type JobModel = ModelConfig;
export interface JobTrain {
  /** Windows (MLP) or sequences of model.context tokens (GPT) per local step. */
  batch: number;
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Global gradient-norm clip (0 or absent: off). */
  gradClip?: number;
}
/** How updates travel: the donors' codec, the broadcast's codec and the seed of the broadcast's randomness. */
export interface JobSync {
  codec: string;
  downCodec: string;
  seed: number;
  /** Donors' error-feedback decay (absent: 1). */
  errorDecay?: number;
}
export interface JobHeader {
  jobId: string;
  name: string;
  model: JobModel;
  /** The tokenizer's characters; vocab[i] is token i. */
  vocab: string[];
  train: JobTrain;
  sync: JobSync;
  shards: number;
}
export interface WeightsHeader {
  jobId: string;
  version: number;
  n: number;
  encoding: 'f32';
}
/** The broadcast step θ_version = θ_baseVersion − decode(body), for donors that hold baseVersion. */
export interface AssignHeader {
  jobId: string;
  round: number;
  version: number;
  shard: number;
  steps: number;
  seed: number;
  /** Milliseconds from receipt until the update is due. */
  deadlineMs: number;
}
export interface IdleHeader {
  reason: string;
}
export interface ErrorHeader {
  message: string;
}

export type Message =
  | { kind: 'hello'; header: HelloHeader; body?: undefined }
  | { kind: 'ready'; header: ReadyHeader; body?: undefined }
  | { kind: 'update'; header: UpdateHeader; body: Uint8Array }
  | { kind: 'status'; header: StatusHeader; body?: undefined }
  | { kind: 'job'; header: JobHeader; body?: undefined }
  | { kind: 'weights'; header: WeightsHeader; body: Uint8Array }
  // With a body: the broadcast step θ_version = θ_(version−1) − decode(body) (the job's downCodec), to
  // apply before training, for a donor one version behind; without: the donor already holds `version`.
  | { kind: 'assign'; header: AssignHeader; body?: Uint8Array }
  | { kind: 'idle'; header: IdleHeader; body?: undefined }
  | { kind: 'error'; header: ErrorHeader; body?: undefined };

export type MessageKind = Message['kind'];
export type MessageOf<K extends MessageKind> = Extract<Message, { kind: K }>;

export const DONOR_KINDS = ['hello', 'ready', 'update', 'status'] as const satisfies readonly MessageKind[];
export const COORDINATOR_KINDS = ['job', 'weights', 'assign', 'idle', 'error'] as const satisfies readonly MessageKind[];
export const MESSAGE_KINDS: readonly MessageKind[] = [...DONOR_KINDS, ...COORDINATOR_KINDS];

export interface ValidateOptions {
  /**
   * Exact body size of an `update` for its codec and parameter count (for int8, the codec's
   * `encodedBytes(n)`). Without it an update body is only required to be non-empty.
   */
  updateBodyBytes?: (codec: UpdateCodec, n: number) => number;
}

// ---- a tiny schema language: each check throws a ProtocolError naming the field path ----

type Check = (value: unknown, path: string) => void;
interface Field {
  check: Check;
  optional: boolean;
}
type Shape = Record<string, Field>;

function describe(v: unknown): string {
  if (typeof v === 'string') return v.length > 40 ? `a ${v.length}-character string` : JSON.stringify(v);
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  return String(v);
}

function fail(path: string, expected: string, got: unknown): never {
  throw new ProtocolError(`${path}: expected ${expected}, got ${describe(got)}`);
}

const req = (check: Check): Field => ({ check, optional: false });
const opt = (check: Check): Field => ({ check, optional: true });

function int(min: number, max: number = Number.MAX_SAFE_INTEGER): Check {
  return (v, path) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
      fail(path, `an integer in [${min}, ${max}]`, v);
    }
  };
}

/** A finite number in a range; `lo`/`hi` bound it, open ends marked by `loOpen`/`hiOpen`. */
function num(lo: number, hi: number, loOpen = false, hiOpen = false): Check {
  const text = `a finite number in ${loOpen ? '(' : '['}${lo}, ${hi}${hiOpen ? ')' : ']'}`;
  return (v, path) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) fail(path, text, v);
    const n = v as number;
    if (loOpen ? n <= lo : n < lo) fail(path, text, v);
    if (hiOpen ? n >= hi : n > hi) fail(path, text, v);
  };
}

const bool: Check = (v, path) => {
  if (typeof v !== 'boolean') fail(path, 'true or false', v);
};

const finite: Check = (v, path) => {
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(path, 'a finite number', v);
};

function str(min: number, max: number, pattern?: RegExp, patternText?: string): Check {
  return (v, path) => {
    if (typeof v !== 'string') fail(path, `a string of ${min}..${max} characters`, v);
    const s = v as string;
    if (s.length < min || s.length > max) fail(path, `a string of ${min}..${max} characters`, v);
    if (pattern && !pattern.test(s)) fail(path, patternText ?? `a string matching ${pattern}`, v);
  };
}

function oneOf(...values: string[]): Check {
  return (v, path) => {
    if (typeof v !== 'string' || !values.includes(v)) {
      fail(path, `one of ${values.map((x) => JSON.stringify(x)).join(', ')}`, v);
    }
  };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkShape(shape: Shape, v: unknown, path: string): void {
  if (!isPlainObject(v)) fail(path, 'an object', v);
  const obj = v as Record<string, unknown>;
  const unknown = Object.keys(obj).filter((k) => !Object.prototype.hasOwnProperty.call(shape, k));
  if (unknown.length > 0) {
    const names = unknown.map((k) => JSON.stringify(k)).join(', ');
    throw new ProtocolError(
      `${path}: unknown field${unknown.length > 1 ? 's' : ''} ${names} (allowed: ${Object.keys(shape).join(', ')})`,
    );
  }
  for (const [key, field] of Object.entries(shape)) {
    // `undefined` counts as absent so TypeScript optional fields can be left undefined when encoding.
    const value = obj[key];
    if (value === undefined) {
      if (!field.optional) throw new ProtocolError(`${path}.${key}: missing required field`);
      continue;
    }
    field.check(value, `${path}.${key}`);
  }
}

const obj = (shape: Shape): Check => (v, path) => checkShape(shape, v, path);

const ID = str(1, 64, /^[A-Za-z0-9_-]+$/, 'a string of letters, digits, "_" or "-"');
const COUNT = int(0);

const codecCheck: Check = (v, path) => {
  if (typeof v !== 'string') fail(path, 'a codec name', v);
  try {
    checkCodecName(v as string);
  } catch (e) {
    throw new ProtocolError(`${path}: ${(e as Error).message}`);
  }
};

const vocabCheck: Check = (v, path) => {
  if (!Array.isArray(v) || v.length < 2 || v.length > 4096) fail(path, 'an array of 2..4096 strings', v);
  const arr = v as unknown[];
  const token = str(1, 8);
  const seen = new Set<string>();
  arr.forEach((t, i) => {
    token(t, `${path}[${i}]`);
    if (seen.has(t as string)) throw new ProtocolError(`${path}[${i}]: duplicate token ${JSON.stringify(t)}`);
    seen.add(t as string);
  });
};

// The model's size limits live with the model (validateMlpConfig, validateGptConfig); here only the
// types are checked, per model.type.
const MODEL_SHAPES: Record<JobModel['type'], Shape> = {
  mlp: { type: req(oneOf('mlp')), vocab: req(int(1)), context: req(int(1)), embed: req(int(1)), hidden: req(int(1)) },
  gpt: {
    type: req(oneOf('gpt')),
    vocab: req(int(1)),
    context: req(int(1)),
    layers: req(int(1)),
    heads: req(int(1)),
    width: req(int(1)),
    tiedEmbeddings: req(bool),
    lowRank: opt(obj({ rank: req(int(1)), layers: opt(oneOf('middle', 'all')) })),
  },
};

const modelCheck: Check = (v, path) => {
  const type = isPlainObject(v) ? v.type : undefined;
  if (type !== 'mlp' && type !== 'gpt') {
    if (!isPlainObject(v)) fail(path, 'an object', v);
    fail(`${path}.type`, 'one of "mlp", "gpt"', type);
  }
  checkShape(MODEL_SHAPES[type], v, path);
  try {
    if (type === 'mlp') validateMlpConfig(v as Extract<JobModel, { type: 'mlp' }>);
    else validateGptConfig(v as Extract<JobModel, { type: 'gpt' }>);
  } catch (e) {
    throw new ProtocolError(`${path}: ${(e as Error).message}`);
  }
};

type BodyRule = 'none' | 'weights' | 'update' | 'step';

const KINDS: Record<MessageKind, { header: Shape; body: BodyRule }> = {
  hello: {
    header: {
      donorId: req(ID),
      adapter: req(str(0, 200)),
      userAgent: req(str(0, 300)),
      protocol: req(int(1, 255)),
    },
    body: 'none',
  },
  ready: { header: { jobId: req(ID), version: req(int(-1)) }, body: 'none' },
  update: {
    header: {
      jobId: req(ID),
      round: req(COUNT),
      baseVersion: req(COUNT),
      steps: req(int(1, 1_000_000)),
      loss: req(finite),
      tokens: req(COUNT),
      codec: req(codecCheck),
      n: req(int(1, MAX_PARAMS)),
      computeMs: req(num(0, Number.MAX_SAFE_INTEGER)),
    },
    body: 'update',
  },
  status: {
    header: { state: req(oneOf('training', 'paused', 'idle')), detail: opt(str(0, 200)) },
    body: 'none',
  },
  job: {
    header: {
      jobId: req(ID),
      name: req(str(1, 200)),
      model: req(modelCheck),
      vocab: req(vocabCheck),
      train: req(
        obj({
          batch: req(int(1, 65536)),
          lr: req(num(0, 10, true)),
          beta1: req(num(0, 1, false, true)),
          beta2: req(num(0, 1, false, true)),
          eps: req(num(0, 1, true)),
          weightDecay: req(num(0, 10)),
          gradClip: opt(num(0, 1000)),
        }),
      ),
      sync: req(obj({ codec: req(codecCheck), downCodec: req(codecCheck), seed: req(int(0, 0xffffffff)), errorDecay: opt(num(0, 1)) })),
      shards: req(int(1, 1_000_000)),
    },
    body: 'none',
  },
  weights: {
    header: { jobId: req(ID), version: req(COUNT), n: req(int(1, MAX_PARAMS)), encoding: req(oneOf('f32')) },
    body: 'weights',
  },
  assign: {
    header: {
      jobId: req(ID),
      round: req(COUNT),
      version: req(COUNT),
      shard: req(int(0, 999_999)),
      steps: req(int(1, 1_000_000)),
      seed: req(int(0, 0xffffffff)),
      deadlineMs: req(num(0, 86_400_000, true)),
    },
    body: 'step',
  },
  idle: { header: { reason: req(str(1, 200)) }, body: 'none' },
  error: { header: { message: req(str(1, 1000)) }, body: 'none' },
};

export function isMessageKind(kind: unknown): kind is MessageKind {
  return typeof kind === 'string' && Object.prototype.hasOwnProperty.call(KINDS, kind);
}

/** Whether messages of this kind may carry a body (an assign's, the broadcast step, is optional). */
export function kindHasBody(kind: MessageKind): boolean {
  return KINDS[kind].body !== 'none';
}

/** Whether this kind's body may be absent. */
export function bodyOptional(kind: MessageKind): boolean {
  return KINDS[kind].body === 'step';
}

/**
 * Checks a message's kind, header and body length; throws a ProtocolError naming the first problem.
 * `bodyLength` is the number of body bytes (0 for none).
 */
export function validateMessage(
  kind: string,
  header: unknown,
  bodyLength: number,
  options: ValidateOptions = {},
): asserts kind is MessageKind {
  if (!isMessageKind(kind)) {
    throw new ProtocolError(`unknown message kind ${JSON.stringify(kind)} (known: ${MESSAGE_KINDS.join(', ')})`);
  }
  const spec = KINDS[kind];
  checkShape(spec.header, header, kind);
  const h = header as Record<string, unknown>;
  if (kind === 'job') {
    const job = header as JobHeader;
    if (job.vocab.length !== job.model.vocab) {
      throw new ProtocolError(`job.vocab: ${job.vocab.length} tokens but model.vocab is ${job.model.vocab}`);
    }
  }
  switch (spec.body) {
    case 'none':
      if (bodyLength !== 0) throw new ProtocolError(`${kind} carries no body, got ${bodyLength} body bytes`);
      break;
    case 'weights': {
      const expected = (h.n as number) * 4;
      if (bodyLength !== expected) {
        throw new ProtocolError(`weights body must be n*4 = ${expected} bytes (n = ${h.n}), got ${bodyLength}`);
      }
      break;
    }
    case 'update': {
      const hook = options.updateBodyBytes;
      if (hook) {
        const expected = hook(h.codec as UpdateCodec, h.n as number);
        if (bodyLength !== expected) {
          throw new ProtocolError(
            `update body must be ${expected} bytes for codec ${h.codec} with n = ${h.n}, got ${bodyLength}`,
          );
        }
      } else if (bodyLength < 1) {
        throw new ProtocolError('update body is empty; it must carry the encoded update');
      }
      break;
    }
    case 'step':
      // The receiver knows the job's codec and checks the exact size as it decodes (src/sync/sync.ts).
      if (bodyLength > 0 && (h.version as number) < 1) {
        throw new ProtocolError(`${kind} carries a broadcast step to version ${h.version}, but the first step makes version 1`);
      }
      break;
  }
}

/** Validates a whole message object before it is sent (the body must be present exactly when the kind has one). */
export function checkMessage(msg: Message, options: ValidateOptions = {}): void {
  if (!isPlainObject(msg)) throw new ProtocolError(`message: expected an object, got ${describe(msg)}`);
  const kind = (msg as { kind: unknown }).kind;
  if (!isMessageKind(kind)) {
    throw new ProtocolError(`unknown message kind ${JSON.stringify(kind)} (known: ${MESSAGE_KINDS.join(', ')})`);
  }
  const body = (msg as { body?: unknown }).body;
  if (bodyOptional(kind)) {
    if (body !== undefined && !(body instanceof Uint8Array && body.byteLength > 0)) {
      throw new ProtocolError(`${kind} body must be absent or a non-empty Uint8Array, got ${describe(body)}`);
    }
  } else if (kindHasBody(kind)) {
    if (!(body instanceof Uint8Array)) throw new ProtocolError(`${kind} needs a Uint8Array body, got ${describe(body)}`);
  } else if (body !== undefined) {
    throw new ProtocolError(`${kind} carries no body, but one was given`);
  }
  validateMessage(kind, msg.header, body instanceof Uint8Array ? body.byteLength : 0, options);
}
