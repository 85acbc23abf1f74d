import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../util/rng';
import { FramedChannel, type DataChannelLike, type FramedChannelOptions } from './channel';
import { FRAME_MAGIC, splitIntoFrames } from './frames';
import { FRAME_HEADER_BYTES, MAX_BUFFERED_BYTES, MAX_FRAME_BYTES, PROTOCOL_VERSION } from './limits';
import { DONOR_KINDS, MESSAGE_KINDS, type Message } from './messages';
import { FakeChannel, randomBytes, sampleMessages } from './messages.test-helper';
import { ProtocolError, encodeMessage, wireSize } from './wire';

/** Collects what a FramedChannel delivers; `next(n)` resolves once n messages (in total) have arrived. */
function collect(ch: FramedChannel) {
  const messages: Message[] = [];
  const errors: Error[] = [];
  let waiter: { n: number; resolve: () => void } | null = null;
  let errWaiter: { n: number; resolve: () => void } | null = null;
  ch.onMessage = (m) => {
    messages.push(m);
    if (waiter && messages.length >= waiter.n) waiter.resolve();
  };
  ch.onError = (e) => {
    errors.push(e);
    if (errWaiter && errors.length >= errWaiter.n) errWaiter.resolve();
  };
  return {
    messages,
    errors,
    next: (n: number) =>
      messages.length >= n ? Promise.resolve() : new Promise<void>((resolve) => (waiter = { n, resolve })),
    nextError: (n: number) =>
      errors.length >= n ? Promise.resolve() : new Promise<void>((resolve) => (errWaiter = { n, resolve })),
  };
}

/** Frame bytes a message occupies on the wire, computed from the encoder and the splitter. */
// wire.ts's wireSize (what the compression benchmark counts) must equal what the channel counts.
const wireBytes = (msg: Message, maxFrame = MAX_FRAME_BYTES): number => wireSize(msg, maxFrame);

function framedPair(options: FramedChannelOptions = {}, lowEvent = true, drainPerTick?: number) {
  const [ra, rb] = FakeChannel.pair(lowEvent, drainPerTick);
  return { ra, rb, a: new FramedChannel(ra, options), b: new FramedChannel(rb, options) };
}

const samples = sampleMessages(5, 300_000);

// Compile-time check (tsc): the browser's RTCDataChannel is a DataChannelLike.
export const browserChannelFits: (dc: RTCDataChannel) => DataChannelLike = (dc) => dc;

test('every kind crosses the channel both ways, with matching byte counts', async () => {
  const { a, b } = framedPair();
  const atB = collect(b);
  const atA = collect(a);
  let expected = 0;
  for (const kind of MESSAGE_KINDS) {
    await a.send(samples[kind]);
    await b.send(samples[kind]);
    expected += wireBytes(samples[kind]);
  }
  await atB.next(MESSAGE_KINDS.length);
  await atA.next(MESSAGE_KINDS.length);
  assert.deepEqual(
    atB.messages,
    MESSAGE_KINDS.map((k) => samples[k]),
  );
  assert.deepEqual(
    atA.messages,
    MESSAGE_KINDS.map((k) => samples[k]),
  );
  assert.equal(a.stats.bytesSent, expected);
  assert.equal(b.stats.bytesReceived, expected);
  assert.equal(b.stats.bytesSent, expected);
  assert.equal(a.stats.bytesReceived, expected);
  assert.equal(a.bytesSent, a.stats.bytesSent);
  assert.equal(b.bytesReceived, b.stats.bytesReceived);
  assert.equal(b.stats.messagesReceived, MESSAGE_KINDS.length);
  assert.equal(b.stats.framesReceived, a.stats.framesSent);
  assert.deepEqual([atA.errors, atB.errors], [[], []]);
});

for (const lowEvent of [true, false]) {
  test(`flow control keeps the send buffer under the high-water mark (${lowEvent ? 'bufferedamountlow event' : 'polling, as on wrtc'})`, async () => {
    const highWaterMark = 256 * 1024;
    const lowWaterMark = 64 * 1024;
    const { ra, a, b } = framedPair({ highWaterMark, lowWaterMark }, lowEvent, 32 * 1024);
    const atB = collect(b);
    const n = (3 * 1024 * 1024) / 4;
    const body = randomBytes(new Rng(1), n * 4);
    const msg: Message = { kind: 'weights', header: { jobId: 'j', version: 1, n, encoding: 'f32' }, body };
    await a.send(msg);
    await atB.next(1);
    assert.deepEqual(atB.messages[0], msg);
    assert.equal(
      ra.bufferedAmountLowThreshold,
      lowEvent ? lowWaterMark : undefined,
      'threshold only set where supported',
    );
    // The sender never pushes the buffer past the high-water mark (the brief allows one frame more)...
    assert.ok(ra.maxBuffered <= highWaterMark, `buffer reached ${ra.maxBuffered} > ${highWaterMark}`);
    // ...yet used it: it filled up to within a frame of the mark before waiting.
    assert.ok(ra.maxBuffered > highWaterMark - MAX_FRAME_BYTES, `buffer only reached ${ra.maxBuffered}`);
    assert.equal(ra.listenerCount('bufferedamountlow'), 0, 'drain listeners are removed');
  });
}

test('the fake measures overflow: an unthrottled sender overshoots the high-water mark', () => {
  // Control for the flow-control tests: the same frames written without waiting.
  const [ra] = FakeChannel.pair(true, 32 * 1024);
  const frames = splitIntoFrames(0, randomBytes(new Rng(2), 3 * 1024 * 1024));
  for (const f of frames) ra.send(f);
  assert.ok(ra.maxBuffered > 256 * 1024);
  ra.close();
});

test('sends are serialized: one message’s frames all go before the next’s', async () => {
  const { ra, a, b } = framedPair({}, true, 16 * 1024);
  const atB = collect(b);
  const rng = new Rng(3);
  const mk = (n: number, version: number): Message => ({
    kind: 'weights',
    header: { jobId: 'j', version, n, encoding: 'f32' },
    body: randomBytes(rng, n * 4),
  });
  const msgs = [mk(100_000, 1), samples.hello, mk(60_000, 2), samples.idle];
  await Promise.all(msgs.map((m) => a.send(m)));
  await atB.next(msgs.length);
  assert.deepEqual(atB.messages, msgs);
  const ids = ra.log.map((f) => new DataView(f.buffer, f.byteOffset).getUint32(4, true));
  for (let i = 1; i < ids.length; i++)
    assert.ok(ids[i] >= ids[i - 1], `frame ${i} of message ${ids[i]} after message ${ids[i - 1]}`);
  assert.equal(new Set(ids).size, msgs.length);
});

test('bad input is reported, counted, and the channel keeps going', async () => {
  const { ra, a, b } = framedPair({ maxMessageBytes: 1 << 20 });
  const atB = collect(b);
  const frame = (id: number, payload: Uint8Array, total = payload.byteLength, count = 1, index = 0) => {
    const f = new Uint8Array(FRAME_HEADER_BYTES + payload.byteLength);
    const v = new DataView(f.buffer);
    v.setUint32(0, FRAME_MAGIC, true);
    v.setUint32(4, id, true);
    v.setUint32(8, index, true);
    v.setUint32(12, count, true);
    v.setUint32(16, total, true);
    f.set(payload, FRAME_HEADER_BYTES);
    return f;
  };
  const badVersion = encodeMessage(samples.hello);
  badVersion[0] = PROTOCOL_VERSION + 1;
  const inputs: [Uint8Array | string, RegExp][] = [
    ['hello as text', /received a text message of 13 characters; this channel carries binary frames only/],
    [new Uint8Array(5), /frame of 5 bytes is shorter than the 20-byte frame header/],
    [new Uint8Array(40), /bad frame magic 0x00000000/],
    [
      frame(900, new Uint8Array(10), 2 << 20, 40),
      /message 900 declares 2097152 bytes, over the 1048576-byte message limit/,
    ],
    [frame(901, badVersion), new RegExp(`unsupported protocol version ${PROTOCOL_VERSION + 1}`)],
  ];
  for (const [data] of inputs) ra.sendRaw(data);
  await atB.nextError(inputs.length);
  inputs.forEach(([, pattern], i) => {
    assert.ok(atB.errors[i] instanceof ProtocolError, `error ${i} is a ProtocolError`);
    assert.match(atB.errors[i].message, pattern);
  });
  assert.equal(b.stats.rejectedFrames, 4);
  assert.equal(b.stats.rejectedMessages, 1);
  assert.equal(b.stats.framesReceived, inputs.length);
  // a well-formed message still gets through
  await a.send(samples.status);
  await atB.next(1);
  assert.deepEqual(atB.messages, [samples.status]);
});

test('kinds outside `accept` are rejected', async () => {
  const [ra, rb] = FakeChannel.pair();
  const a = new FramedChannel(ra);
  const b = new FramedChannel(rb, { accept: DONOR_KINDS });
  const atB = collect(b);
  await a.send(samples.job);
  await a.send(samples.hello);
  await atB.next(1);
  await atB.nextError(1);
  assert.match(
    atB.errors[0].message,
    /message kind "job" is not accepted here \(accepted: hello, ready, update, status, ping\)/,
  );
  assert.deepEqual(atB.messages, [samples.hello]);
  assert.equal(b.stats.rejectedMessages, 1);
});

test('an invalid message is refused before anything is sent', async () => {
  const { ra, a } = framedPair();
  const bad = { kind: 'ready', header: { jobId: 'j', version: -5 } } as Message;
  await assert.rejects(a.send(bad), (e: unknown) => e instanceof ProtocolError && /ready\.version/.test(e.message));
  assert.equal(ra.log.length, 0);
  assert.equal(a.stats.bytesSent, 0);
});

test('closing while a send waits for the buffer to drain rejects it; later sends reject too', async () => {
  const { ra, a, b } = framedPair({ highWaterMark: 128 * 1024, lowWaterMark: 32 * 1024 });
  let closes = 0;
  b.onClose = () => closes++;
  ra.paused = true; // the network stalls, so the buffer never drains
  const n = 200_000;
  // Two full frames fill the 128 KiB high-water mark; the sender then blocks waiting to drain.
  const full = ra.whenBuffered(2 * MAX_FRAME_BYTES);
  const pending = a.send({
    kind: 'weights',
    header: { jobId: 'j', version: 1, n, encoding: 'f32' },
    body: randomBytes(new Rng(4), n * 4),
  });
  await full;
  a.close();
  await assert.rejects(pending, /data channel closed while waiting for its send buffer to drain/);
  await assert.rejects(a.send(samples.hello), /FramedChannel is closed/);
  assert.equal(a.closed, true);
  assert.equal(b.closed, true, 'the remote side sees the close');
  assert.equal(closes, 1);
  assert.equal(ra.listenerCount('message'), 0, 'listeners are detached on close');
});

test('messages that arrive before onMessage is set are delivered once it is', async () => {
  const { rb, a, b } = framedPair();
  let firstErrorSeen: Error | null = null;
  b.onError = (e) => (firstErrorSeen = e);
  // Registered after b's own listener, so it runs once b has taken each message in.
  const delivered = rb.whenDelivered(2);
  await a.send(samples.hello);
  await a.send(samples.ready);
  await delivered;
  assert.equal(b.stats.messagesReceived, 2);
  const got: Message[] = [];
  b.onMessage = (m) => got.push(m);
  assert.deepEqual(got, [samples.hello, samples.ready]);
  assert.equal(firstErrorSeen, null);
});

test('a throwing onMessage handler is reported through onError and the channel keeps going', async () => {
  const { a, b } = framedPair();
  const errors: Error[] = [];
  const got: Message[] = [];
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  b.onError = (e) => errors.push(e);
  b.onMessage = (m) => {
    got.push(m);
    if (m.kind === 'hello') throw new Error('handler bug');
    done();
  };
  await a.send(samples.hello);
  await a.send(samples.idle);
  await finished;
  assert.deepEqual(
    got.map((m) => m.kind),
    ['hello', 'idle'],
  );
  assert.deepEqual(
    errors.map((e) => e.message),
    ['handler bug'],
  );
});

test('option limits are enforced, naming the 16 MiB buffer ceiling', () => {
  const [ra] = FakeChannel.pair();
  assert.throws(
    () => new FramedChannel(ra, { highWaterMark: MAX_BUFFERED_BYTES }),
    new RegExp(
      `highWaterMark must be in \\[${MAX_FRAME_BYTES}, ${MAX_BUFFERED_BYTES - MAX_FRAME_BYTES}\\] ` +
        `so the send buffer stays under ${MAX_BUFFERED_BYTES} bytes`,
    ),
  );
  assert.throws(
    () => new FramedChannel(ra, { highWaterMark: 1 << 20, lowWaterMark: 1 << 20 }),
    /lowWaterMark must be in \[0, highWaterMark\)/,
  );
  assert.throws(
    () => new FramedChannel(ra, { maxFrameBytes: MAX_FRAME_BYTES + 1 }),
    /maxFrame must be an integer in \[21, 65536\]/,
  );
});
