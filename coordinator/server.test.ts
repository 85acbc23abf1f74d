// The whole coordinator (HTTP, signalling, its WebRTC peer, hub, runner, engine, store) driven by a
// Node donor over a real data channel on loopback: bad input of every kind gets an `error` reply
// naming the problem, and the coordinator keeps serving and finishes the round with a good update.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataConnection, Peer } from 'peerjs';
import { startServer } from './server';
import { createNodePeer, openFramedChannel } from './rtc-node';
import { COORDINATOR_KINDS, type Message, type MessageOf } from '../src/protocol/messages';
import type { FramedChannel } from '../src/protocol/channel';
import { jobCodec, flatLayout } from '../src/sync/job-codec';
import { Rng } from '../src/util/rng';
import type { RoundResult } from './job-engine';

/** Messages from the coordinator, awaited by kind in arrival order. */
class Inbox {
  private readonly items: Message[] = [];
  private waiters: { kind: string; resolve: (m: Message) => void }[] = [];
  push(m: Message): void {
    const i = this.waiters.findIndex((w) => w.kind === m.kind);
    if (i >= 0) this.waiters.splice(i, 1)[0].resolve(m);
    else this.items.push(m);
  }
  next<K extends Message['kind']>(kind: K): Promise<MessageOf<K>> {
    const i = this.items.findIndex((m) => m.kind === kind);
    if (i >= 0) return Promise.resolve(this.items.splice(i, 1)[0] as MessageOf<K>);
    return new Promise((resolve) => this.waiters.push({ kind, resolve: resolve as (m: Message) => void }));
  }
}

test('coordinator rejects bad donor input with clear errors and keeps serving', { timeout: 120_000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'starling-server-'));
  // This test's donor sends no pings: a long heartbeat timeout keeps it connected between steps.
  const server = await startServer({
    port: 0,
    dataDir,
    appDir: join(dataDir, 'no-app'),
    log: () => {},
    heartbeat: { timeoutMs: 120_000 },
  });
  let peer: Peer | null = null;
  try {
    const auth = { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' };
    const created = await fetch(`${server.url}/api/jobs`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({
        name: 'server-test',
        model: { type: 'mlp', context: 3, embed: 4, hidden: 8 },
        data: { maxBytes: 20000 },
        train: { rounds: 2, minDonors: 1, roundDeadlineMs: 60_000, codec: 'int8' },
      }),
    });
    assert.equal(created.status, 201, await created.clone().text());
    const jobId = ((await created.json()) as { id: string }).id;
    const rounds: RoundResult[] = [];
    const roundWaiters: ((r: RoundResult) => void)[] = [];
    server.runner.on('round', (x: RoundResult) => {
      rounds.push(x);
      roundWaiters.shift()?.(x);
    });
    const nextRound = () => new Promise<RoundResult>((r) => roundWaiters.push(r));
    const firstRound = nextRound();

    const cfg = (await (await fetch(`${server.url}/api/donor/config`)).json()) as {
      coordinatorPeerId: string;
      peerPath: string;
      heartbeat: { intervalMs: number; timeoutMs: number };
    };
    // Donor pages learn the coordinator's heartbeat from its config (the default period, this timeout).
    assert.deepEqual(cfg.heartbeat, { intervalMs: 2000, timeoutMs: 120_000 });
    peer = await createNodePeer({ host: '127.0.0.1', port: server.port, path: cfg.peerPath });
    const conn: DataConnection = peer.connect(cfg.coordinatorPeerId, { serialization: 'raw', reliable: true });
    const inbox = new Inbox();
    const ch: FramedChannel = await openFramedChannel(conn, { accept: COORDINATOR_KINDS });
    ch.onMessage = (m) => inbox.push(m);
    const send = (kind: string, header: Record<string, unknown>, body?: Uint8Array) =>
      ch.send({ kind, header, body } as unknown as Message);

    // 1. A message before hello.
    await send('status', { state: 'idle' });
    assert.match((await inbox.next('error')).header.message, /before hello/);

    // 2. A frame with the wrong magic, straight onto the data channel.
    (conn.dataChannel as unknown as { send(b: Uint8Array): void }).send(new Uint8Array(64).fill(7));
    assert.match((await inbox.next('error')).header.message, /magic/i);

    // 3. Hello, then the job arrives.
    await send('hello', { donorId: 'node-donor', adapter: 'test', userAgent: 'node', protocol: 1 });
    const job = await inbox.next('job');
    assert.equal(job.header.jobId, jobId);

    // 4. A coordinator-only kind from a donor.
    await send('idle', { reason: 'nope' });
    assert.match((await inbox.next('error')).header.message, /not accepted|may not send/);

    // 5. Ready for an unknown job id.
    await send('ready', { jobId: 'no-such-job', version: -1 });
    assert.match((await inbox.next('error')).header.message, /no-such-job/);

    await send('ready', { jobId, version: -1 });
    const weights = await inbox.next('weights');
    const assign = await inbox.next('assign');
    const n = weights.header.n;
    assert.equal(weights.body?.byteLength, n * 4);
    const codec = jobCodec('int8', flatLayout(n)); // the job's codec, as a donor builds it
    const header = {
      jobId,
      round: assign.header.round,
      baseVersion: assign.header.version,
      steps: 1,
      loss: 3,
      tokens: 64,
      codec: 'int8',
      n,
      computeMs: 1,
    };

    // 6. An update of the wrong size.
    await send('update', header, new Uint8Array(codec.encodedBytes(n) - 4));
    assert.match((await inbox.next('error')).header.message, new RegExp(`is exactly ${codec.encodedBytes(n)}`));

    // 7. An update with a NaN scale: the right size, values not finite. It ends this donor's part
    // in the round, which closes with nothing applied.
    const rng = new Rng(5);
    const good = codec.encode(rng.uniformArray(n, -1e-3, 1e-3));
    const bad = good.slice();
    new DataView(bad.buffer).setFloat32(12, NaN, true); // the first int8 scale, after the 12-byte model-codec header
    await send('update', header, bad);
    assert.match((await inbox.next('error')).header.message, /finite|NaN/);
    const r0 = await firstRound;
    assert.equal(r0.accepted, 0);
    assert.equal(r0.rejected, 1);
    assert.equal(r0.version, 0);

    // 8. The HTTP API still answers while all this happened.
    const mid = await fetch(`${server.url}/api/jobs/${jobId}`, { headers: auth });
    assert.equal(mid.status, 200);

    // 9. A good update completes the next round.
    const assign2 = await inbox.next('assign');
    const secondRound = nextRound();
    await send('update', { ...header, round: assign2.header.round, baseVersion: assign2.header.version }, good);
    const r = await secondRound;
    assert.equal(r.accepted, 1);
    assert.equal(r.version, 1);
    assert.ok(r.bytesUp >= good.byteLength && r.bytesDown > 0, JSON.stringify(r));
    assert.ok(r0.bytesDown >= n * 4, 'the first round carried the weights down');
    const after = (await (await fetch(`${server.url}/api/jobs/${jobId}/rounds`, { headers: auth })).json()) as unknown;
    // The first attempt accepted nothing, so it did not count: round 0 ran again and is the one listed.
    assert.equal(assign2.header.round, 0);
    const listed = (after as { rounds: { round: number; accepted: number }[] }).rounds;
    assert.deepEqual(
      listed.map((x) => [x.round, x.accepted]),
      [[0, 1]],
    );
  } finally {
    peer?.destroy();
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
