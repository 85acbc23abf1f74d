// The hub's liveness rules over in-memory channels on a fake clock: a donor that keeps beating stays,
// a donor that falls silent is closed and detached at once, with a log line naming the reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DonorHub, type HubTarget } from './donor-hub';
import type { DonorLink } from './job-engine';
import { FramedChannel } from '../src/protocol/channel';
import { DONOR_KINDS, type Message } from '../src/protocol/messages';
import { FakeChannel } from '../src/protocol/messages.test-helper';
import { FakeClock, turn } from '../src/protocol/heartbeat.test-helper';

class Target implements HubTarget {
  readonly attached: DonorLink[] = [];
  readonly detached: { donorId: string; reason: string }[] = [];
  readonly messages: Message[] = [];
  attachDonor(link: DonorLink): void {
    this.attached.push(link);
  }
  detachDonor(donorId: string, reason: string): void {
    this.detached.push({ donorId, reason });
  }
  onDonorMessage(_donorId: string, m: Message): void {
    this.messages.push(m);
  }
}

const heartbeat = { intervalMs: 100, timeoutMs: 400 };

function setup() {
  const clock = new FakeClock();
  const target = new Target();
  const log: string[] = [];
  const hub = new DonorHub(target, (l) => log.push(l), { heartbeat, clock });
  const [atHub, atDonor] = FakeChannel.pair();
  const hubSide = new FramedChannel(atHub, { accept: DONOR_KINDS });
  const donor = new FramedChannel(atDonor);
  const fromHub: Message[] = [];
  donor.onMessage = (m) => fromHub.push(m);
  hub.serve(hubSide, 'peer-1');
  const hello: Message = {
    kind: 'hello',
    header: { donorId: 'd1', adapter: 'test', userAgent: 'node', protocol: 4 },
  };
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 25) {
      clock.advance(25);
      await turn();
      await turn();
    }
  };
  return { clock, target, log, hub, atHub, atDonor, hubSide, donor, fromHub, hello, run };
}

test('a donor that keeps sending pings stays attached; pings never reach the runner', async () => {
  const s = setup();
  await s.donor.send(s.hello);
  for (let i = 0; i < 30; i++) {
    await s.donor.send({ kind: 'ping', header: {} });
    await s.run(100);
  }
  assert.equal(s.target.attached.length, 1);
  assert.deepEqual(s.target.detached, []);
  assert.deepEqual(s.target.messages, []);
  assert.ok(s.fromHub.filter((m) => m.kind === 'pong').length >= 25, 'the hub beats too');
  assert.equal(s.hub.stats.timedOut, 0);
  // The link's byte counts (a round's bytes up and down) leave the beats out: only the hello came up.
  const link = s.target.attached[0];
  assert.equal(link.bytesReceived(), s.hubSide.stats.bytesReceived - s.hubSide.stats.heartbeatBytesReceived);
  assert.ok(link.bytesReceived() > 0 && link.bytesReceived() < 200, `${link.bytesReceived()} bytes`);
  assert.equal(link.bytesSent(), 0, 'the hub sent nothing but pongs');
});

test('a donor silent past the timeout is detached at once and its channel closed', async () => {
  const s = setup();
  await s.donor.send(s.hello);
  await s.run(100);
  assert.equal(s.target.attached.length, 1);
  // The donor's process dies: nothing more arrives and no close event is ever delivered.
  s.atDonor.paused = true;
  s.atHub.paused = true;
  const diedAt = s.clock.now();
  while (s.target.detached.length === 0 && s.clock.now() - diedAt < 2000) await s.run(25);
  const after = s.clock.now() - diedAt;
  assert.ok(after >= heartbeat.timeoutMs - 100 && after <= heartbeat.timeoutMs + 100, `detached after ${after} ms`);
  assert.equal(s.target.detached.length, 1);
  assert.equal(s.target.detached[0].donorId, 'd1');
  assert.match(s.target.detached[0].reason, /heartbeat timeout/);
  assert.ok(
    s.log.some((l) => /^disconnecting d1: no message for \d+\.\d s \(heartbeat timeout\)$/.test(l)),
    s.log.join('\n'),
  );
  assert.equal(s.hubSide.closed, true);
  assert.equal(s.hub.stats.timedOut, 1);
  await s.run(1000);
  assert.equal(s.target.detached.length, 1, 'detached once, not again when the close lands');
});

test('a connection that never says hello is closed after the timeout too', async () => {
  const s = setup();
  s.atDonor.paused = true;
  await s.run(heartbeat.timeoutMs + 100);
  assert.equal(s.hubSide.closed, true);
  assert.deepEqual(s.target.detached, [], 'nothing was attached, so nothing to detach');
  assert.ok(s.log.some((l) => l.startsWith('disconnecting peer-1: no message')));
});

test('a closed channel detaches its donor with the reason "connection closed"', async () => {
  const s = setup();
  await s.donor.send(s.hello);
  await s.run(50);
  s.donor.close();
  await s.run(50);
  assert.deepEqual(s.target.detached, [{ donorId: 'd1', reason: 'connection closed' }]);
});

test('a bad heartbeat setting fails when the hub is made', () => {
  assert.throws(() => new DonorHub(new Target(), () => {}, { heartbeat: { intervalMs: 100, timeoutMs: 100 } }));
});
