import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../util/rng';
import { FRAME_MAGIC, ProtocolError, Reassembler, frameCount, splitIntoFrames } from './frames';
import {
  FRAME_HEADER_BYTES,
  MAX_FRAME_BYTES,
  MAX_FRAME_PAYLOAD,
  MAX_MESSAGES_IN_FLIGHT,
  MAX_MESSAGE_BYTES,
} from './limits';
import { randomBytes } from './messages.test-helper';

const rng = new Rng(11);

/** Builds a frame with any header values, valid or not. */
function makeFrame(f: {
  magic?: number;
  id: number;
  index: number;
  count: number;
  total: number;
  payload: Uint8Array;
}): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_BYTES + f.payload.byteLength);
  const view = new DataView(out.buffer);
  view.setUint32(0, f.magic ?? FRAME_MAGIC, true);
  view.setUint32(4, f.id, true);
  view.setUint32(8, f.index, true);
  view.setUint32(12, f.count, true);
  view.setUint32(16, f.total, true);
  out.set(f.payload, FRAME_HEADER_BYTES);
  return out;
}

function pushRejects(r: Reassembler, frame: Uint8Array, pattern: RegExp): void {
  assert.throws(
    () => r.push(frame),
    (e: unknown) => {
      assert.ok(e instanceof ProtocolError, `expected a ProtocolError, got ${String(e)}`);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

/** After an error the reassembler must still put a fresh message together. */
function assertStillWorks(
  r: Reassembler,
  id: number,
  size = 3 * MAX_FRAME_PAYLOAD + 17,
  maxFrame = MAX_FRAME_BYTES,
): void {
  const bytes = randomBytes(rng, size);
  const frames = splitIntoFrames(id, bytes, maxFrame);
  frames.slice(0, -1).forEach((f) => assert.equal(r.push(f), null));
  assert.deepEqual(r.push(frames[frames.length - 1]), bytes);
}

function header(frame: Uint8Array) {
  const v = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  return {
    magic: v.getUint32(0, true),
    id: v.getUint32(4, true),
    index: v.getUint32(8, true),
    count: v.getUint32(12, true),
    total: v.getUint32(16, true),
  };
}

test('split and reassemble at the edge sizes', () => {
  for (const size of [0, 1, MAX_FRAME_PAYLOAD, MAX_FRAME_PAYLOAD + 1, 5 * 1024 * 1024]) {
    const bytes = randomBytes(rng, size);
    const frames = splitIntoFrames(42, bytes);
    assert.equal(
      frames.length,
      Math.max(1, Math.ceil(size / (MAX_FRAME_BYTES - FRAME_HEADER_BYTES))),
      `count for ${size}`,
    );
    assert.equal(frames.length, frameCount(size));
    frames.forEach((f, i) => {
      const h = header(f);
      assert.deepEqual(h, { magic: FRAME_MAGIC, id: 42, index: i, count: frames.length, total: size });
      assert.ok(f.byteLength <= MAX_FRAME_BYTES);
      // every frame but the last is full
      if (i < frames.length - 1) assert.equal(f.byteLength, MAX_FRAME_BYTES);
    });
    assert.equal(
      frames.reduce((a, f) => a + f.byteLength - FRAME_HEADER_BYTES, 0),
      size,
    );
    const r = new Reassembler();
    const results = frames.map((f) => r.push(f));
    results.slice(0, -1).forEach((x) => assert.equal(x, null));
    assert.deepEqual(results[results.length - 1], bytes, `payload of ${size}`);
    assert.equal(r.inFlight, 0);
  }
});

test('smaller frame sizes split the same way', () => {
  const bytes = randomBytes(rng, 1000);
  const frames = splitIntoFrames(1, bytes, 120);
  assert.equal(frames.length, Math.ceil(1000 / 100));
  assert.ok(frames.every((f) => f.byteLength <= 120));
  const r = new Reassembler();
  let out: Uint8Array | null = null;
  for (const f of frames) out = r.push(f);
  assert.deepEqual(out, bytes);
  assert.throws(() => splitIntoFrames(1, bytes, FRAME_HEADER_BYTES), /maxFrame must be an integer in \[21, 65536\]/);
  assert.throws(() => splitIntoFrames(1, bytes, MAX_FRAME_BYTES + 1), /maxFrame must be an integer in \[21, 65536\]/);
  assert.throws(() => splitIntoFrames(-1, bytes), /messageId must be a u32/);
});

test('frames out of order and messages interleaved', () => {
  const a = randomBytes(rng, 7 * MAX_FRAME_PAYLOAD + 5);
  const b = randomBytes(rng, 3 * MAX_FRAME_PAYLOAD);
  const fa = splitIntoFrames(1, a);
  const fb = splitIntoFrames(2, b);
  // Fisher–Yates over both messages' frames together, the last frames included.
  const all = [...fa, ...fb];
  for (let i = all.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [all[i], all[j]] = [all[j], all[i]];
  }
  const r = new Reassembler();
  const done = new Map<number, Uint8Array>();
  for (const f of all) {
    const out = r.push(f);
    if (out) done.set(header(f).id, out);
  }
  assert.deepEqual(done.get(1), a);
  assert.deepEqual(done.get(2), b);
  // last frame first
  const r2 = new Reassembler();
  const rev = [...fa].reverse();
  const outs = rev.map((f) => r2.push(f));
  assert.deepEqual(outs[outs.length - 1], a);
});

test('a frame shorter than the header is rejected', () => {
  const r = new Reassembler();
  pushRejects(r, new Uint8Array(FRAME_HEADER_BYTES - 1), /frame of 19 bytes is shorter than the 20-byte frame header/);
  assertStillWorks(r, 1);
});

test('a frame with the wrong magic is rejected', () => {
  const r = new Reassembler();
  pushRejects(
    r,
    makeFrame({ magic: 0x12345678, id: 1, index: 0, count: 1, total: 1, payload: new Uint8Array(1) }),
    /bad frame magic 0x12345678 \(expected 0x53544631 'STF1'\)/,
  );
  assertStillWorks(r, 1);
});

test('count 0, index out of range and inconsistent counts are rejected', () => {
  const r = new Reassembler();
  pushRejects(
    r,
    makeFrame({ id: 1, index: 0, count: 0, total: 0, payload: new Uint8Array(0) }),
    /frame count is 0 \(message 1\)/,
  );
  pushRejects(
    r,
    makeFrame({ id: 2, index: 3, count: 3, total: 30, payload: new Uint8Array(10) }),
    /frame index 3 is out of range for a 3-frame message \(message 2\)/,
  );
  assert.equal(r.push(makeFrame({ id: 3, index: 0, count: 3, total: 30, payload: new Uint8Array(10) })), null);
  pushRejects(
    r,
    makeFrame({ id: 3, index: 1, count: 4, total: 30, payload: new Uint8Array(10) }),
    /frame says 4 frames \/ 30 bytes but earlier frames of message 3 said 3 \/ 30/,
  );
  assert.equal(r.inFlight, 0, 'the inconsistent message is dropped');
  pushRejects(
    r,
    makeFrame({ id: 4, index: 0, count: 50, total: 30, payload: new Uint8Array(1) }),
    /frame count 50 cannot carry 30 bytes/,
  );
  pushRejects(
    r,
    makeFrame({ id: 5, index: 0, count: 2, total: 3 * MAX_FRAME_PAYLOAD, payload: new Uint8Array(1) }),
    /frame count 2 cannot carry/,
  );
  assertStillWorks(r, 9);
});

test('a duplicate frame index is rejected and drops the message', () => {
  const r = new Reassembler();
  const frames = splitIntoFrames(7, randomBytes(rng, 3 * MAX_FRAME_PAYLOAD));
  assert.equal(r.push(frames[0]), null);
  pushRejects(r, frames[0], /duplicate frame index 0 \(message 7\)/);
  assert.equal(r.inFlight, 0);
  // the rest of the dropped message is discarded quietly rather than restarting it
  assert.equal(r.push(frames[1]), null);
  assert.equal(r.push(frames[2]), null);
  assert.equal(r.discardedFrames, 2);
  assert.equal(r.inFlight, 0);
  assertStillWorks(r, 8);
});

test('payload lengths inconsistent with totalBytes and position are rejected', () => {
  const r = new Reassembler();
  const p = (n: number) => randomBytes(rng, n);
  // single frame: payload must equal totalBytes
  pushRejects(
    r,
    makeFrame({ id: 1, index: 0, count: 1, total: 10, payload: p(9) }),
    /single frame carries 9 payload bytes, expected totalBytes 10/,
  );
  // non-last frames must all carry the same size
  assert.equal(r.push(makeFrame({ id: 2, index: 0, count: 3, total: 25, payload: p(10) })), null);
  pushRejects(
    r,
    makeFrame({ id: 2, index: 1, count: 3, total: 25, payload: p(9) }),
    /frame 1 carries 9 payload bytes; every frame but the last must carry 10 \(message 2\)/,
  );
  // last frame must carry exactly the rest
  assert.equal(r.push(makeFrame({ id: 3, index: 0, count: 3, total: 25, payload: p(10) })), null);
  pushRejects(
    r,
    makeFrame({ id: 3, index: 2, count: 3, total: 25, payload: p(6) }),
    /last frame carries 6 payload bytes; 25 bytes in 3 frames of 10 leave 5/,
  );
  // a last frame arriving first is checked once the chunk size is known
  assert.equal(r.push(makeFrame({ id: 4, index: 2, count: 3, total: 25, payload: p(6) })), null);
  pushRejects(
    r,
    makeFrame({ id: 4, index: 0, count: 3, total: 25, payload: p(10) }),
    /last frame carries 6 payload bytes; 25 bytes in 3 frames of 10 leave 5/,
  );
  // a first frame whose size cannot split totalBytes into count frames
  pushRejects(
    r,
    makeFrame({ id: 5, index: 0, count: 3, total: 25, payload: p(13) }),
    /frame 0 carries 13 payload bytes, which cannot split 25 bytes into 3 frames/,
  );
  pushRejects(
    r,
    makeFrame({ id: 6, index: 0, count: 3, total: 25, payload: p(8) }),
    /frame 0 carries 8 payload bytes, which cannot split 25 bytes into 3 frames/,
  );
  assert.equal(r.inFlight, 0);
  assertStillWorks(r, 10);
});

test('frames and messages over the limits are rejected, naming the limit', () => {
  const r = new Reassembler({ maxMessageBytes: 1000 });
  pushRejects(
    r,
    makeFrame({ id: 1, index: 0, count: 1, total: 1001, payload: new Uint8Array(1001) }),
    /message 1 declares 1001 bytes, over the 1000-byte message limit/,
  );
  const d = new Reassembler();
  pushRejects(
    d,
    makeFrame({ id: 2, index: 0, count: 2, total: MAX_MESSAGE_BYTES + 1, payload: new Uint8Array(10) }),
    new RegExp(`declares ${MAX_MESSAGE_BYTES + 1} bytes, over the ${MAX_MESSAGE_BYTES}-byte message limit`),
  );
  pushRejects(
    d,
    makeFrame({ id: 3, index: 0, count: 2, total: 2 * MAX_FRAME_BYTES, payload: new Uint8Array(MAX_FRAME_BYTES) }),
    new RegExp(
      `frame of ${MAX_FRAME_BYTES + FRAME_HEADER_BYTES} bytes is over the ${MAX_FRAME_BYTES}-byte frame limit`,
    ),
  );
  assertStillWorks(r, 4, 1000, 300);
  assertStillWorks(d, 4);
});

test('too many messages in flight are rejected, and finishing one frees a slot', () => {
  const r = new Reassembler();
  const msgs = Array.from({ length: MAX_MESSAGES_IN_FLIGHT + 1 }, (_, i) => ({
    id: 100 + i,
    bytes: randomBytes(rng, 2 * MAX_FRAME_PAYLOAD),
  }));
  const frames = msgs.map((m) => splitIntoFrames(m.id, m.bytes));
  for (let i = 0; i < MAX_MESSAGES_IN_FLIGHT; i++) assert.equal(r.push(frames[i][0]), null);
  assert.equal(r.inFlight, MAX_MESSAGES_IN_FLIGHT);
  pushRejects(
    r,
    frames[MAX_MESSAGES_IN_FLIGHT][0],
    new RegExp(
      `too many messages in flight: message 104 would be number ` +
        `${MAX_MESSAGES_IN_FLIGHT + 1}, limit ${MAX_MESSAGES_IN_FLIGHT}`,
    ),
  );
  // the refused message's later frames are discarded, not counted as a new message
  assert.equal(r.push(frames[MAX_MESSAGES_IN_FLIGHT][1]), null);
  assert.equal(r.discardedFrames, 1);
  // the ones in flight still complete
  for (let i = 0; i < MAX_MESSAGES_IN_FLIGHT; i++) assert.deepEqual(r.push(frames[i][1]), msgs[i].bytes);
  assert.equal(r.inFlight, 0);
  assertStillWorks(r, 200);
});

test('single-frame messages never occupy an in-flight slot', () => {
  const r = new Reassembler({ maxInFlight: 1 });
  const big = splitIntoFrames(1, randomBytes(rng, MAX_FRAME_PAYLOAD + 1));
  assert.equal(r.push(big[0]), null);
  const small = randomBytes(rng, 5);
  assert.deepEqual(r.push(splitIntoFrames(2, small)[0]), small);
  assert.equal(r.inFlight, 1);
});
