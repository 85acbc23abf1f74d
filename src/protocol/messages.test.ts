import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProtocolError } from './errors';
import { MAX_PARAMS } from './limits';
import {
  COORDINATOR_KINDS,
  DONOR_KINDS,
  MESSAGE_KINDS,
  checkMessage,
  validateMessage,
  type Message,
  type MessageKind,
} from './messages';
import { sampleMessages } from './messages.test-helper';

const samples = sampleMessages(3);

function bodyLength(m: Message): number {
  return m.body?.byteLength ?? 0;
}

/** Validates `kind` with `header` changed by `patch` and expects a ProtocolError matching `pattern`. */
function rejectsPatched(kind: MessageKind, patch: (h: Record<string, unknown>) => void, pattern: RegExp): void {
  const header = structuredClone(samples[kind].header) as unknown as Record<string, unknown>;
  patch(header);
  assert.throws(
    () => validateMessage(kind, header, bodyLength(samples[kind])),
    (e: unknown) => {
      assert.ok(e instanceof ProtocolError, `expected a ProtocolError, got ${String(e)}`);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

test('the samples are valid', () => {
  for (const kind of MESSAGE_KINDS) {
    validateMessage(kind, samples[kind].header, bodyLength(samples[kind]));
    checkMessage(samples[kind]);
  }
  assert.deepEqual([...DONOR_KINDS, ...COORDINATOR_KINDS].sort(), [...MESSAGE_KINDS].sort());
});

test('an unknown kind is rejected, listing the known ones', () => {
  assert.throws(
    () => validateMessage('bye', {}, 0),
    /unknown message kind "bye" \(known: hello, ready, update, status, ping, job, weights, assign, idle, error, pong\)/,
  );
});

test('every field of every kind rejects a value of the wrong type, naming kind and field', () => {
  for (const kind of MESSAGE_KINDS) {
    for (const field of Object.keys(samples[kind].header)) {
      // An array is the wrong type for every header field.
      rejectsPatched(kind, (h) => (h[field] = [1]), new RegExp(`^${kind}\\.${field}: expected .*, got an array of 1$`));
    }
  }
});

test('every required field is required', () => {
  const optional = new Set(['status.detail']);
  for (const kind of MESSAGE_KINDS) {
    for (const field of Object.keys(samples[kind].header)) {
      if (optional.has(`${kind}.${field}`)) continue;
      rejectsPatched(kind, (h) => delete h[field], new RegExp(`^${kind}\\.${field}: missing required field$`));
    }
  }
  // and an optional one may be left out
  validateMessage('status', { state: 'idle' }, 0);
});

test('unknown fields are rejected at the top level and inside nested objects', () => {
  for (const kind of MESSAGE_KINDS) {
    rejectsPatched(kind, (h) => (h.surprise = 1), new RegExp(`^${kind}: unknown field "surprise" \\(allowed: `));
  }
  rejectsPatched(
    'job',
    (h) => ((h.train as Record<string, unknown>).momentum = 0.9),
    /^job\.train: unknown field "momentum"/,
  );
  rejectsPatched(
    'job',
    (h) => ((h.model as Record<string, unknown>).layers = 2),
    /^job\.model: unknown field "layers"/,
  );
});

test('ranges and formats are enforced', () => {
  rejectsPatched('hello', (h) => (h.donorId = ''), /hello\.donorId: expected a string of 1\.\.64 characters, got ""/);
  rejectsPatched(
    'hello',
    (h) => (h.donorId = 'd'.repeat(65)),
    /hello\.donorId: expected a string of 1\.\.64 characters, got a 65-character string/,
  );
  rejectsPatched(
    'hello',
    (h) => (h.donorId = 'has space'),
    /hello\.donorId: expected a string of letters, digits, "_" or "-", got "has space"/,
  );
  rejectsPatched(
    'hello',
    (h) => (h.adapter = 'a'.repeat(201)),
    /hello\.adapter: expected a string of 0\.\.200 characters/,
  );
  rejectsPatched(
    'hello',
    (h) => (h.userAgent = 'u'.repeat(301)),
    /hello\.userAgent: expected a string of 0\.\.300 characters/,
  );
  rejectsPatched('hello', (h) => (h.protocol = 1.5), /hello\.protocol: expected an integer in \[1, 255\], got 1.5/);
  rejectsPatched('ready', (h) => (h.version = -2), /ready\.version: expected an integer in \[-1, \d+\], got -2/);
  rejectsPatched('update', (h) => (h.round = -1), /update\.round: expected an integer in \[0, \d+\], got -1/);
  rejectsPatched('update', (h) => (h.steps = 0), /update\.steps: expected an integer in \[1, 1000000\], got 0/);
  rejectsPatched('update', (h) => (h.loss = Number.NaN), /update\.loss: expected a finite number, got NaN/);
  rejectsPatched(
    'update',
    (h) => (h.loss = Number.POSITIVE_INFINITY),
    /update\.loss: expected a finite number, got Infinity/,
  );
  rejectsPatched('update', (h) => (h.codec = 'topk'), /update\.codec: codec "topk": topk needs a fraction/);
  rejectsPatched(
    'assign',
    (h) => (h.version = 0),
    /assign carries a broadcast step to version 0, but the first step makes version 1/,
  );
  rejectsPatched(
    'job',
    (h) => ((h.train as Record<string, unknown>).downCodec = 'q3'),
    /job\.train\.downCodec: codec "q3"/,
  );
  rejectsPatched(
    'update',
    (h) => (h.n = MAX_PARAMS + 1),
    new RegExp(`update\\.n: expected an integer in \\[1, ${MAX_PARAMS}\\]`),
  );
  rejectsPatched(
    'update',
    (h) => (h.computeMs = -0.5),
    /update\.computeMs: expected a finite number in \[0, \d+\], got -0.5/,
  );
  rejectsPatched(
    'status',
    (h) => (h.state = 'sleeping'),
    /status\.state: expected one of "training", "paused", "idle", got "sleeping"/,
  );
  rejectsPatched(
    'status',
    (h) => (h.detail = 'd'.repeat(201)),
    /status\.detail: expected a string of 0\.\.200 characters/,
  );
  rejectsPatched('weights', (h) => (h.encoding = 'f16'), /weights\.encoding: expected one of "f32", got "f16"/);
  rejectsPatched('weights', (h) => (h.version = -1), /weights\.version: expected an integer in \[0,/);
  rejectsPatched(
    'assign',
    (h) => (h.deadlineMs = 0),
    /assign\.deadlineMs: expected a finite number in \(0, 86400000\], got 0/,
  );
  rejectsPatched('assign', (h) => (h.seed = 2 ** 32), /assign\.seed: expected an integer in \[0, 4294967295\]/);
  rejectsPatched('idle', (h) => (h.reason = ''), /idle\.reason: expected a string of 1\.\.200 characters/);
  rejectsPatched(
    'error',
    (h) => (h.message = 'm'.repeat(1001)),
    /error\.message: expected a string of 1\.\.1000 characters/,
  );
});

test('job headers are checked in depth', () => {
  rejectsPatched(
    'job',
    (h) => ((h.model as Record<string, unknown>).type = 'rnn'),
    /^job\.model\.type: expected one of "mlp", "gpt", got "rnn"$/,
  );
  // A GPT model is checked against the GPT's shape, so the MLP's fields are unknown there.
  rejectsPatched(
    'job',
    (h) => ((h.model as Record<string, unknown>).type = 'gpt'),
    /^job\.model: unknown fields "embed", "hidden"/,
  );
  // the model's own limits apply (the schema's)
  rejectsPatched(
    'job',
    (h) => ((h.model as Record<string, unknown>).context = 1000),
    /job\.model\.context: expected an integer in \[1, 64\], got 1000/,
  );
  rejectsPatched(
    'job',
    (h) => ((h.train as Record<string, unknown>).beta1 = 1),
    /job\.train\.beta1: expected a finite number in \[0, 1\), got 1/,
  );
  rejectsPatched(
    'job',
    (h) => ((h.train as Record<string, unknown>).lr = 0),
    /job\.train\.lr: expected a finite number in \(0, 1\], got 0/,
  );
  rejectsPatched(
    'job',
    (h) => ((h.train as Record<string, unknown>).batch = 0),
    /job\.train\.batch: expected an integer in \[1, 4096\], got 0/,
  );
  rejectsPatched('job', (h) => (h.vocab as string[]).push('zz'), /job\.vocab: 34 tokens but model\.vocab is 33/);
  rejectsPatched('job', (h) => ((h.vocab as string[])[5] = 'a'), /job\.vocab\[5\]: duplicate token "a"/);
  rejectsPatched(
    'job',
    (h) => ((h.vocab as unknown[])[2] = 7),
    /job\.vocab\[2\]: expected a string of 1\.\.8 characters, got 7/,
  );
  rejectsPatched(
    'job',
    (h) => ((h.vocab as string[])[2] = ''),
    /job\.vocab\[2\]: expected a string of 1\.\.8 characters, got ""/,
  );
  rejectsPatched(
    'job',
    (h) => ((h.train as Record<string, unknown>).shards = 0),
    /job\.train\.shards: expected an integer in \[1, 65536\], got 0/,
  );
});

test('a job may carry a GPT model, checked field by field and by validateGptConfig', () => {
  const header = structuredClone(samples.job.header) as unknown as Record<string, unknown>;
  const vocab = (header.vocab as string[]).length;
  const gpt = {
    type: 'gpt',
    vocab,
    context: 16,
    layers: 3,
    heads: 2,
    width: 16,
    tiedEmbeddings: true,
    lowRank: { rank: 4, layers: 'middle' },
  };
  const withModel = (m: Record<string, unknown>, train: Record<string, unknown> = {}) => ({
    ...header,
    model: m,
    train: { ...(header.train as Record<string, unknown>), ...train },
  });
  validateMessage('job', withModel(gpt, { gradClip: 1 }), 0);
  const { lowRank: _, ...fullRank } = gpt;
  validateMessage('job', withModel(fullRank), 0);
  validateMessage('job', withModel({ ...gpt, lowRank: { rank: 4 } }), 0);
  const rejects = (m: Record<string, unknown>, pattern: RegExp, train: Record<string, unknown> = {}) =>
    assert.throws(
      () => validateMessage('job', withModel(m, train), 0),
      (e: unknown) => {
        assert.ok(e instanceof ProtocolError, String(e));
        assert.match(e.message, pattern);
        return true;
      },
    );
  rejects({ ...gpt, heads: 3 }, /^job\.model: model\.width \(16\) must be divisible by model\.heads \(3\)$/);
  rejects({ ...gpt, lowRank: { rank: 17 } }, /^job\.model: model\.lowRank\.rank must be an integer in \[1, 16\]/);
  rejects(
    { ...gpt, lowRank: { rank: 2, layers: 'first' } },
    /^job\.model\.lowRank\.layers: expected one of "middle", "all", got "first"$/,
  );
  rejects({ ...gpt, tiedEmbeddings: 1 }, /^job\.model\.tiedEmbeddings: expected true or false, got 1$/);
  rejects({ ...gpt, context: 5000 }, /^job\.model\.context: expected an integer in \[1, 4096\], got 5000$/);
  rejects({ ...gpt, embed: 8 }, /^job\.model: unknown field "embed"/);
  const { layers: _l, ...noLayers } = gpt;
  rejects(noLayers, /^job\.model\.layers: missing required field$/);
  rejects(gpt, /^job\.train\.gradClip: expected a finite number in \[0, 1000\], got -1$/, { gradClip: -1 });
});

test('body presence and exact sizes', () => {
  const w = samples.weights;
  assert.throws(() => validateMessage('weights', w.header, w.header.n * 4 - 4), /weights body must be n\*4/);
  assert.throws(() => validateMessage('idle', samples.idle.header, 1), /idle carries no body, got 1 body bytes/);
  // An assignment's body (the broadcast step) is optional; checkMessage wants it absent or non-empty.
  validateMessage('assign', samples.assign.header, 0);
  validateMessage('assign', samples.assign.header, 5);
  const { body: _, ...bare } = samples.assign;
  checkMessage(bare);
  assert.throws(
    () => checkMessage({ ...bare, body: new Uint8Array(0) }),
    /assign body must be absent or a non-empty Uint8Array, got/,
  );
  assert.throws(() => validateMessage('update', samples.update.header, 0), /update body is empty/);
  const n = (samples.update.header as { n: number }).n;
  const hook = (codec: string, count: number) => (codec === 'int8' ? count + 8 : -1);
  validateMessage('update', samples.update.header, n + 8, { updateBodyBytes: hook });
  assert.throws(
    () => validateMessage('update', samples.update.header, n + 7, { updateBodyBytes: hook }),
    new RegExp(`update body must be ${n + 8} bytes`),
  );
});
