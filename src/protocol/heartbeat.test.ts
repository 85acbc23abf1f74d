import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FramedChannel } from './channel';
import { FakeChannel } from './messages.test-helper';
import { FakeClock, turn } from './heartbeat.test-helper';
import { DEFAULT_HEARTBEAT_MS, DEFAULT_HEARTBEAT_TIMEOUT_MS, heartbeatSettings, startHeartbeat } from './heartbeat';
import type { Message } from './messages';

const settings = { intervalMs: 100, timeoutMs: 400 };

function pair() {
  const [ra, rb] = FakeChannel.pair();
  const a = new FramedChannel(ra);
  const b = new FramedChannel(rb);
  const got = { a: [] as Message[], b: [] as Message[] };
  a.onMessage = (m) => got.a.push(m);
  b.onMessage = (m) => got.b.push(m);
  return { ra, rb, a, b, got };
}

/** Advances the clock in steps, letting the in-memory channel deliver after each. */
async function run(clock: FakeClock, ms: number, step = 25): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    clock.advance(step);
    await turn();
    await turn();
  }
}

test('both sides beat every interval and neither times out while the other lives', async () => {
  const clock = new FakeClock();
  const { a, b, got } = pair();
  const silent: string[] = [];
  const ha = startHeartbeat(a, 'ping', () => silent.push('a'), settings, clock);
  const hb = startHeartbeat(b, 'pong', () => silent.push('b'), settings, clock);
  await run(clock, 10 * settings.timeoutMs);
  assert.deepEqual(silent, []);
  // One beat at start, then one per interval: 41 over 4000 ms at 100 ms (give or take the last in flight).
  assert.ok(got.b.filter((m) => m.kind === 'ping').length >= 39, `${got.b.length} pings`);
  assert.ok(got.a.filter((m) => m.kind === 'pong').length >= 39, `${got.a.length} pongs`);
  assert.ok(ha.silentMs() < settings.intervalMs);
  ha.stop();
  hb.stop();
  assert.equal(clock.activeTimers, 0);
});

test('a side that stops hearing anything reports silence once, after the timeout and not before', async () => {
  const clock = new FakeClock();
  const { ra, rb, a, b } = pair();
  const silent: number[] = [];
  startHeartbeat(a, 'ping', (ms) => silent.push(ms), settings, clock);
  const hb = startHeartbeat(b, 'pong', () => {}, settings, clock);
  await run(clock, 200);
  // b's process "dies": it stops beating and nothing it had queued ever arrives (no close event either).
  hb.stop();
  rb.paused = true;
  ra.paused = true;
  const diedAt = clock.now();
  while (silent.length === 0 && clock.now() - diedAt < 2 * settings.timeoutMs) await run(clock, 25);
  assert.equal(silent.length, 1);
  const detectedAfter = clock.now() - diedAt;
  assert.ok(detectedAfter >= settings.timeoutMs - 2 * 25, `detected after ${detectedAfter} ms`);
  assert.ok(detectedAfter <= settings.timeoutMs + 100, `detected after ${detectedAfter} ms`);
  assert.ok(silent[0] >= settings.timeoutMs);
  await run(clock, 1000);
  assert.equal(silent.length, 1, 'reported once');
  assert.equal(clock.activeTimers, 0, "the silent side's timer stopped itself");
});

test('any frame counts as life: a side that only sends other messages is not timed out', async () => {
  const clock = new FakeClock();
  const { a, b } = pair();
  const silent: number[] = [];
  startHeartbeat(a, 'ping', (ms) => silent.push(ms), settings, clock);
  // b never beats, but sends a status message every 150 ms (under the 400 ms timeout).
  for (let i = 0; i < 20; i++) {
    await b.send({ kind: 'status', header: { state: 'training' } });
    await run(clock, 150);
  }
  assert.deepEqual(silent, []);
  // Then it goes quiet.
  await run(clock, 500);
  assert.equal(silent.length, 1);
});

test('a closed channel stops the heartbeat without reporting silence', async () => {
  const clock = new FakeClock();
  const { a } = pair();
  const silent: number[] = [];
  startHeartbeat(a, 'ping', (ms) => silent.push(ms), settings, clock);
  a.close();
  await run(clock, 1000);
  assert.deepEqual(silent, []);
  assert.equal(clock.activeTimers, 0);
});

test('heartbeat settings: defaults, and out-of-range values named', () => {
  assert.deepEqual(heartbeatSettings(), { intervalMs: DEFAULT_HEARTBEAT_MS, timeoutMs: DEFAULT_HEARTBEAT_TIMEOUT_MS });
  assert.deepEqual(heartbeatSettings({ intervalMs: 5000 }), { intervalMs: 5000, timeoutMs: 15000 });
  assert.throws(() => heartbeatSettings({ intervalMs: 5 }), /interval must be an integer ≥ 10 ms, got 5/);
  assert.throws(() => heartbeatSettings({ intervalMs: 100, timeoutMs: 150 }), /timeout must be .*\[2 × interval = 200/);
  assert.throws(() => heartbeatSettings({ timeoutMs: 1e9 }), /got 1000000000/);
});

test('beats are counted apart, so round byte counts can leave them out; one beat is 30 bytes', async () => {
  const clock = new FakeClock();
  const { a, b } = pair();
  const ha = startHeartbeat(a, 'ping', () => {}, { intervalMs: 100, timeoutMs: 5000 }, clock);
  await run(clock, 1000);
  ha.stop();
  await run(clock, 100);
  assert.ok(a.stats.messagesSent >= 10);
  assert.equal(a.stats.heartbeatBytesSent, a.stats.bytesSent);
  assert.equal(a.stats.bytesSent, 30 * a.stats.messagesSent);
  assert.equal(b.stats.heartbeatBytesReceived, a.stats.heartbeatBytesSent);
  await a.send({ kind: 'status', header: { state: 'idle' } });
  await run(clock, 50);
  assert.ok(b.stats.bytesReceived > b.stats.heartbeatBytesReceived);
  assert.equal(b.stats.heartbeatBytesReceived, a.stats.heartbeatBytesSent);
});
