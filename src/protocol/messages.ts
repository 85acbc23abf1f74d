// The message kinds exchanged between donor and coordinator, and their validation. A message is
// { kind, header (JSON object), body? (bytes) }. Every header field is checked for type and range,
// unknown fields are rejected (a typo must not silently fall back to a default), and body sizes are
// checked exactly wherever the header determines them.
//
// Update bodies: the protocol stays independent of the compression codecs, so it only knows that an
// `update` body is non-empty. Receivers that know the codec pass `updateBodyBytes` (for int8, the
// codec's `encodedBytes(n)`) and get an exact length check before anything is decoded.
import { Type, type TSchema } from '@sinclair/typebox';
import { validateModel } from '../model/model';
import { schemaProblem, type SchemaProblem } from '../schema/check';
import { HEADERS, type JobHeader } from './message-schemas';
import { MODEL_CONFIGS } from '../schema/model';
import { ProtocolError } from './errors';
import { checkCodecName } from '../compress/codec-spec';
import type {
  AssignHeader,
  BeatHeader,
  ErrorHeader,
  HelloHeader,
  IdleHeader,
  ReadyHeader,
  StatusHeader,
  UpdateHeader,
  WeightsHeader,
} from './message-schemas';

export { PROTOCOL_VERSION } from './limits';
export type {
  AssignHeader,
  BeatHeader,
  DonorState,
  ErrorHeader,
  HelloHeader,
  IdleHeader,
  JobHeader,
  ReadyHeader,
  StatusHeader,
  UpdateHeader,
  WeightsHeader,
} from './message-schemas';
export type { JobTrain } from '../schema/job';
export type { ModelConfig as JobModel } from '../schema/model';

/** A codec name in src/compress/codec-spec.ts's grammar (e.g. 'q4', 'topk:0.01/q2', 'powersgd:2'). */
export type UpdateCodec = string;

export type Message =
  | { kind: 'hello'; header: HelloHeader; body?: undefined }
  | { kind: 'ready'; header: ReadyHeader; body?: undefined }
  | { kind: 'update'; header: UpdateHeader; body: Uint8Array }
  | { kind: 'status'; header: StatusHeader; body?: undefined }
  // Liveness beats: `ping` from the donor, `pong` from the coordinator, each on its own timer.
  | { kind: 'ping'; header: BeatHeader; body?: undefined }
  | { kind: 'pong'; header: BeatHeader; body?: undefined }
  | { kind: 'job'; header: JobHeader; body?: undefined }
  | { kind: 'weights'; header: WeightsHeader; body: Uint8Array }
  // With a body: the broadcast step θ_version = θ_(version−1) − decode(body) (the job's downCodec), to
  // apply before training, for a donor one version behind; without: the donor already holds `version`.
  | { kind: 'assign'; header: AssignHeader; body?: Uint8Array }
  | { kind: 'idle'; header: IdleHeader; body?: undefined }
  | { kind: 'error'; header: ErrorHeader; body?: undefined };

export type MessageKind = Message['kind'];
export type MessageOf<K extends MessageKind> = Extract<Message, { kind: K }>;
export type HeaderOf<K extends MessageKind> = MessageOf<K>['header'];
/** The body of kind K: a Uint8Array where the kind has one (optional for assign), undefined otherwise. */
export type BodyOf<K extends MessageKind> = MessageOf<K>['body'];
/** Sends one message, its header and body typed by its kind. */
export type SendMessage = <K extends MessageKind>(kind: K, header: HeaderOf<K>, body?: BodyOf<K>) => Promise<void>;

/** A message of kind K from its parts. */
export function makeMessage<K extends MessageKind>(kind: K, header: HeaderOf<K>, body?: BodyOf<K>): MessageOf<K> {
  // TypeScript cannot narrow the union by a generic K; the parameter types already tie header and body to K.
  return (body === undefined ? { kind, header } : { kind, header, body }) as MessageOf<K>;
}

export const DONOR_KINDS = ['hello', 'ready', 'update', 'status', 'ping'] as const satisfies readonly MessageKind[];
export const COORDINATOR_KINDS = [
  'job',
  'weights',
  'assign',
  'idle',
  'error',
  'pong',
] as const satisfies readonly MessageKind[];
export const MESSAGE_KINDS: readonly MessageKind[] = [...DONOR_KINDS, ...COORDINATOR_KINDS];

export interface ValidateOptions {
  /**
   * Exact body size of an `update` for its codec and parameter count (for int8, the codec's
   * `encodedBytes(n)`). Without it an update body is only required to be non-empty.
   */
  updateBodyBytes?: (codec: UpdateCodec, n: number) => number;
}

// ---- header checks: the schemas (src/schema/messages.ts) plus the rules that span fields ----

function describe(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return v.length > 40 ? `a ${v.length}-character string` : JSON.stringify(v);
    case 'object':
      return Array.isArray(v) ? `an array of ${v.length}` : v === null ? 'null' : 'an object';
    case 'number':
    case 'boolean':
    case 'bigint':
    case 'undefined':
      return String(v);
    case 'symbol':
    case 'function':
      return v.toString();
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function protocolError(p: SchemaProblem): ProtocolError {
  switch (p.kind) {
    case 'unknown': {
      const names = p.fields.map((k) => JSON.stringify(k)).join(', ');
      const s = p.fields.length > 1 ? 's' : '';
      return new ProtocolError(`${p.path}: unknown field${s} ${names} (allowed: ${p.allowed.join(', ')})`);
    }
    case 'missing':
      return new ProtocolError(`${p.path}: missing required field`);
    case 'value':
      return new ProtocolError(`${p.path}: expected ${p.expected}, got ${describe(p.value)}`);
  }
}

function checkSchema(schema: TSchema, v: unknown, path: string): void {
  const p = schemaProblem(schema, v, path, { number: 'a finite number' });
  if (p) throw protocolError(p);
}

/** The model: its type picks the schema; then the cross-field rules (validateModel). */
function checkModel(v: unknown, path: string): void {
  if (!isPlainObject(v)) checkSchema(Type.Object({}), v, path);
  const type = (v as Record<string, unknown>).type;
  if (type !== 'mlp' && type !== 'gpt') {
    checkSchema(Type.Union([Type.Literal('mlp'), Type.Literal('gpt')]), type, `${path}.type`);
  }
  checkSchema(MODEL_CONFIGS[type as 'mlp' | 'gpt'], v, path);
  try {
    validateModel(v as JobHeader['model']);
  } catch (e) {
    throw new ProtocolError(`${path}: ${(e as Error).message}`);
  }
}

function checkCodec(name: string, path: string): void {
  try {
    checkCodecName(name);
  } catch (e) {
    throw new ProtocolError(`${path}: ${(e as Error).message}`);
  }
}

/** The job header without its model, which checkModel checks per model type. */
const JOB_REST = Type.Object({ ...HEADERS.job.properties, model: Type.Unknown() }, { additionalProperties: false });

function checkJob(h: JobHeader): void {
  checkModel(h.model, 'job.model');
  const seen = new Set<string>();
  h.vocab.forEach((t, i) => {
    if (seen.has(t)) throw new ProtocolError(`job.vocab[${i}]: duplicate token ${JSON.stringify(t)}`);
    seen.add(t);
  });
  if (h.vocab.length !== h.model.vocab) {
    throw new ProtocolError(`job.vocab: ${h.vocab.length} tokens but model.vocab is ${h.model.vocab}`);
  }
  checkCodec(h.train.codec, 'job.train.codec');
  checkCodec(h.train.downCodec, 'job.train.downCodec');
}

type BodyRule = 'none' | 'weights' | 'update' | 'step';

const BODIES: Record<MessageKind, BodyRule> = {
  hello: 'none',
  ready: 'none',
  update: 'update',
  status: 'none',
  ping: 'none',
  job: 'none',
  weights: 'weights',
  assign: 'step',
  idle: 'none',
  error: 'none',
  pong: 'none',
};

export function isMessageKind(kind: unknown): kind is MessageKind {
  return typeof kind === 'string' && Object.prototype.hasOwnProperty.call(BODIES, kind);
}

/** Whether messages of this kind may carry a body (an assign's, the broadcast step, is optional). */
export function kindHasBody(kind: MessageKind): boolean {
  return BODIES[kind] !== 'none';
}

/** Whether this kind's body may be absent. */
export function bodyOptional(kind: MessageKind): boolean {
  return BODIES[kind] === 'step';
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
  checkSchema(kind === 'job' ? JOB_REST : HEADERS[kind], header, kind);
  const h = header as Record<string, unknown>;
  if (kind === 'job') checkJob(header as JobHeader);
  if (kind === 'update') checkCodec(h.codec as string, 'update.codec');
  switch (BODIES[kind]) {
    case 'none':
      if (bodyLength !== 0) throw new ProtocolError(`${kind} carries no body, got ${bodyLength} body bytes`);
      break;
    case 'weights': {
      const n = h.n as number;
      const expected = n * 4;
      if (bodyLength !== expected) {
        throw new ProtocolError(`weights body must be n*4 = ${expected} bytes (n = ${n}), got ${bodyLength}`);
      }
      break;
    }
    case 'update': {
      const hook = options.updateBodyBytes;
      if (hook) {
        const [codec, n] = [h.codec as UpdateCodec, h.n as number];
        const expected = hook(codec, n);
        if (bodyLength !== expected) {
          throw new ProtocolError(
            `update body must be ${expected} bytes for codec ${codec} with n = ${n}, got ${bodyLength}`,
          );
        }
      } else if (bodyLength < 1) {
        throw new ProtocolError('update body is empty; it must carry the encoded update');
      }
      break;
    }
    case 'step': {
      // The receiver knows the job's codec and checks the exact size as it decodes (src/sync/sync.ts).
      const version = h.version as number;
      if (bodyLength > 0 && version < 1) {
        throw new ProtocolError(
          `${kind} carries a broadcast step to version ${version}, but the first step makes version 1`,
        );
      }
      break;
    }
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
    if (!(body instanceof Uint8Array))
      throw new ProtocolError(`${kind} needs a Uint8Array body, got ${describe(body)}`);
  } else if (body !== undefined) {
    throw new ProtocolError(`${kind} carries no body, but one was given`);
  }
  validateMessage(kind, msg.header, body instanceof Uint8Array ? body.byteLength : 0, options);
}
