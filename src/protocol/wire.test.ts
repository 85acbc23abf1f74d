import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_HEADER_BYTES, MAX_MESSAGE_BYTES, PROTOCOL_VERSION, WIRE_PREFIX_BYTES } from './limits';
import type { Message, MessageKind } from './messages';
import { MESSAGE_KINDS } from './messages';
import { sampleMessages } from './messages.test-helper';
import { HEADER_BINARY, HEADER_JSON, KIND_CODES, ProtocolError, decodeMessage, encodeMessage } from './wire';
import { BINARY_HEADERS, encodeBinaryHeader } from './binary-header';

/** Hand-assembles a wire message so that every field can be made wrong on purpose. */
function rawMessage(opts: {
  version?: number;
  code?: number;
  reserved?: number;
  header: string | Uint8Array;
  headerLen?: number;
  body?: Uint8Array;
}): Uint8Array {
  const header = typeof opts.header === 'string' ? new TextEncoder().encode(opts.header) : opts.header;
  const body = opts.body ?? new Uint8Array(0);
  const out = new Uint8Array(WIRE_PREFIX_BYTES + header.byteLength + body.byteLength);
  const view = new DataView(out.buffer);
  view.setUint8(0, opts.version ?? PROTOCOL_VERSION);
  view.setUint8(1, opts.code ?? KIND_CODES.hello);
  view.setUint16(2, opts.reserved ?? 0, true);
  view.setUint32(4, opts.headerLen ?? header.byteLength, true);
  out.set(header, WIRE_PREFIX_BYTES);
  out.set(body, WIRE_PREFIX_BYTES + header.byteLength);
  return out;
}

const samples = sampleMessages(7);
const helloHeader = JSON.stringify(samples.hello.header);

function rejects(bytes: Uint8Array, pattern: RegExp, options?: Parameters<typeof decodeMessage>[1]): void {
  assert.throws(
    () => decodeMessage(bytes, options),
    (e: unknown) => {
      assert.ok(e instanceof ProtocolError, `expected a ProtocolError, got ${String(e)}`);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

test('every kind round-trips through encode/decode', () => {
  for (const kind of MESSAGE_KINDS) {
    const msg = samples[kind];
    const bytes = encodeMessage(msg);
    assert.deepEqual(decodeMessage(bytes), msg, kind);
  }
});

test('the encoded layout is [version][kind][header format][headerLen][header][body]', () => {
  for (const kind of MESSAGE_KINDS) {
    const msg = samples[kind];
    const bytes = encodeMessage(msg);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const binary = BINARY_HEADERS[kind] !== undefined;
    const header = binary
      ? encodeBinaryHeader(kind, msg.header)!
      : new TextEncoder().encode(JSON.stringify(msg.header));
    assert.equal(view.getUint8(0), PROTOCOL_VERSION);
    assert.equal(view.getUint8(1), KIND_CODES[kind]);
    assert.equal(view.getUint16(2, true), binary ? HEADER_BINARY : HEADER_JSON, kind);
    assert.equal(view.getUint32(4, true), header.byteLength);
    assert.deepEqual(bytes.subarray(8, 8 + header.byteLength), header);
    assert.deepEqual(bytes.subarray(8 + header.byteLength), msg.body ?? new Uint8Array(0));
  }
});

test('binary headers: field order and sizes, a third of the JSON; values that do not fit go as JSON', () => {
  const u = samples.update;
  const bin = encodeBinaryHeader('update', u.header)!;
  const h = u.header;
  // str jobId, u32 round, u32 baseVersion, u32 steps, f64 loss, f64 tokens, str codec, u32 n, f64 computeMs.
  assert.equal(bin.byteLength, 1 + h.jobId.length + 4 + 4 + 4 + 8 + 8 + 1 + h.codec.length + 4 + 8);
  const v = new DataView(bin.buffer);
  assert.equal(v.getUint8(0), h.jobId.length);
  assert.equal(v.getUint32(1 + h.jobId.length, true), h.round);
  assert.equal(v.getFloat64(1 + h.jobId.length + 12, true), h.loss);
  assert.ok(3 * bin.byteLength < new TextEncoder().encode(JSON.stringify(h)).byteLength + 60);
  for (const kind of ['update', 'assign'] as const) {
    const big = {
      ...samples[kind],
      header: { ...samples[kind].header, [kind === 'assign' ? 'round' : 'baseVersion']: 2 ** 33 },
    } as Message;
    const bytes = encodeMessage(big);
    assert.equal(new DataView(bytes.buffer).getUint16(2, true), HEADER_JSON, `${kind} with a count over 2^32 - 1`);
    assert.deepEqual(decodeMessage(bytes), big);
  }
});

test('a broken binary header is rejected naming the field', () => {
  const bytes = encodeMessage(samples.assign);
  const headerLen = new DataView(bytes.buffer).getUint32(4, true);
  const cut = bytes.slice(0, 8 + headerLen - 3);
  new DataView(cut.buffer).setUint32(4, headerLen - 3, true);
  rejects(cut, /assign binary header ends at byte \d+, inside field deadlineMs/);
  const long = new Uint8Array(bytes.byteLength + 2);
  long.set(bytes);
  new DataView(long.buffer).setUint32(4, headerLen + 2, true);
  rejects(long, /assign binary header has 2 bytes after its last field/);
  const hello = encodeMessage(samples.hello);
  new DataView(hello.buffer).setUint16(2, HEADER_BINARY, true);
  rejects(hello, /hello has no binary header layout/);
  // The fields are still validated: a NaN loss in a binary update.
  const up = encodeMessage(samples.update);
  new DataView(up.buffer).setFloat64(8 + 1 + samples.update.header.jobId.length + 12, NaN, true);
  rejects(up, /update\.loss: expected a finite number, got NaN/);
});

test('kind codes are distinct', () => {
  const codes = Object.values(KIND_CODES);
  assert.equal(new Set(codes).size, codes.length);
  assert.deepEqual(Object.keys(KIND_CODES).sort(), [...MESSAGE_KINDS].sort());
});

test('a message shorter than the prefix is rejected', () => {
  rejects(
    new Uint8Array(WIRE_PREFIX_BYTES - 1),
    new RegExp(`7 bytes is shorter than the ${WIRE_PREFIX_BYTES}-byte wire prefix`),
  );
});

test('a wrong protocol version is rejected', () => {
  rejects(
    rawMessage({ version: PROTOCOL_VERSION + 1, header: helloHeader }),
    new RegExp(`unsupported protocol version ${PROTOCOL_VERSION + 1}`),
  );
  rejects(rawMessage({ version: 0, header: helloHeader }), /unsupported protocol version 0/);
});

test('an unknown kind code is rejected', () => {
  rejects(rawMessage({ code: 0x7f, header: helloHeader }), /unknown message kind code 0x7f/);
  rejects(rawMessage({ code: 0, header: helloHeader }), /unknown message kind code 0x00/);
});

test('an unknown header format is rejected', () => {
  rejects(rawMessage({ reserved: 3, header: helloHeader }), /unknown header format 3 \(0: JSON, 1: binary\)/);
});

test('a header length over the limit is rejected, on decode and on encode', () => {
  const big = 'x'.repeat(MAX_HEADER_BYTES + 1);
  rejects(
    rawMessage({ header: big }),
    new RegExp(`header length ${MAX_HEADER_BYTES + 1} is over the ${MAX_HEADER_BYTES}-byte header limit`),
  );
  // A job whose vocabulary does not fit the header cannot be sent at all.
  const vocab = Array.from({ length: 4096 }, (_, i) => `tok${i.toString(16).padStart(5, '0')}`);
  const job = structuredClone<Extract<Message, { kind: 'job' }>>(samples.job);
  job.header.vocab = vocab;
  job.header.model.vocab = vocab.length;
  assert.throws(
    () => encodeMessage(job),
    (e: unknown) => {
      assert.ok(e instanceof ProtocolError);
      assert.match(e.message, new RegExp(`job header is \\d+ bytes, over the ${MAX_HEADER_BYTES}-byte header limit`));
      return true;
    },
  );
});

test('a header length running past the end of the message is rejected', () => {
  const bytes = rawMessage({ header: helloHeader, headerLen: helloHeader.length + 1 });
  rejects(
    bytes,
    new RegExp(`header length ${helloHeader.length + 1} runs past the end of the ${bytes.byteLength}-byte message`),
  );
});

test('a header that is not UTF-8, not JSON, or not an object is rejected', () => {
  rejects(rawMessage({ header: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]) }), /hello header is not valid UTF-8/);
  rejects(rawMessage({ header: '{"donorId": ' }), /hello header is not valid JSON/);
  rejects(rawMessage({ header: '' }), /hello header is not valid JSON/);
  rejects(rawMessage({ header: '[1,2]' }), /hello header must be a JSON object, got an array/);
  rejects(rawMessage({ header: 'null' }), /hello header must be a JSON object, got null/);
  rejects(rawMessage({ header: '42' }), /hello header must be a JSON object, got number/);
});

test('wrong field types, unknown fields and missing fields are rejected by name', () => {
  const h = samples.hello.header;
  rejects(
    rawMessage({ header: JSON.stringify({ ...h, donorId: 5 }) }),
    /hello\.donorId: expected a string of 1\.\.64 characters, got 5/,
  );
  rejects(
    rawMessage({ header: JSON.stringify({ ...h, protocol: '1' }) }),
    /hello\.protocol: expected an integer in \[1, 255\], got "1"/,
  );
  rejects(
    rawMessage({ header: JSON.stringify({ ...h, extra: true }) }),
    /hello: unknown field "extra" \(allowed: donorId, adapter, userAgent, protocol\)/,
  );
  rejects(rawMessage({ header: JSON.stringify({ ...h, __proto__x: 1, b: 2 }) }), /unknown fields "__proto__x", "b"/);
  rejects(rawMessage({ header: '{"__proto__": {"polluted": 1}, "donorId": "a"}' }), /hello: unknown field "__proto__"/);
  const { adapter: _omit, ...missing } = h;
  rejects(rawMessage({ header: JSON.stringify(missing) }), /hello\.adapter: missing required field/);
});

test('wrong body sizes are rejected', () => {
  const w = samples.weights;
  const wHeader = JSON.stringify(w.header);
  const expected = w.header.n * 4;
  for (const len of [0, expected - 1, expected + 1, expected + 4]) {
    rejects(
      rawMessage({ code: KIND_CODES.weights, header: wHeader, body: new Uint8Array(len) }),
      new RegExp(`weights body must be n\\*4 = ${expected} bytes \\(n = ${w.header.n}\\), got ${len}`),
    );
  }
  rejects(rawMessage({ header: helloHeader, body: new Uint8Array(3) }), /hello carries no body, got 3 body bytes/);
  const u = samples.update;
  const uHeader = JSON.stringify(u.header);
  rejects(rawMessage({ code: KIND_CODES.update, header: uHeader }), /update body is empty/);
  // With the codec's size function the update body is checked exactly.
  const updateBodyBytes = (_codec: string, n: number) => n + 4;
  const good = u.header.n + 4;
  rejects(
    rawMessage({ code: KIND_CODES.update, header: uHeader, body: new Uint8Array(good + 1) }),
    new RegExp(`update body must be ${good} bytes for codec int8 with n = ${u.header.n}, got ${good + 1}`),
    { updateBodyBytes },
  );
  const ok = decodeMessage(rawMessage({ code: KIND_CODES.update, header: uHeader, body: new Uint8Array(good) }), {
    updateBodyBytes,
  });
  assert.equal(ok.body?.byteLength, good);
});

test('a message over the size limit is rejected on decode and on encode', () => {
  const bytes = encodeMessage(samples.weights);
  rejects(
    bytes,
    new RegExp(`message of ${bytes.byteLength} bytes is over the ${bytes.byteLength - 1}-byte message limit`),
    {
      maxMessageBytes: bytes.byteLength - 1,
    },
  );
  assert.throws(
    () => encodeMessage(samples.weights, { maxMessageBytes: bytes.byteLength - 1 }),
    (e: unknown) => {
      assert.ok(e instanceof ProtocolError);
      assert.match(
        e.message,
        new RegExp(`weights message is ${bytes.byteLength} bytes, over the ${bytes.byteLength - 1}-byte message limit`),
      );
      return true;
    },
  );
  assert.ok(MAX_MESSAGE_BYTES >= 64 * 1024 * 1024);
});

test('encode refuses invalid messages before producing bytes', () => {
  const bad = { kind: 'hello', header: { ...samples.hello.header, protocol: 0 } } as unknown as Message;
  assert.throws(() => encodeMessage(bad), /hello\.protocol: expected an integer in \[1, 255\], got 0/);
  const unknownKind = { kind: 'bye', header: {} } as unknown as Message;
  assert.throws(() => encodeMessage(unknownKind), /unknown message kind "bye" \(known: hello, ready/);
  const noBody = { kind: 'weights', header: samples.weights.header } as unknown as Message;
  assert.throws(() => encodeMessage(noBody), /weights needs a Uint8Array body/);
  const extraBody = { ...samples.idle, body: new Uint8Array(1) } as unknown as Message;
  assert.throws(() => encodeMessage(extraBody), /idle carries no body, but one was given/);
});

test('decoding keeps working after rejecting input', () => {
  rejects(rawMessage({ header: '{' }), /not valid JSON/);
  for (const kind of ['hello', 'weights'] satisfies MessageKind[]) {
    assert.deepEqual(decodeMessage(encodeMessage(samples[kind])), samples[kind]);
  }
});
