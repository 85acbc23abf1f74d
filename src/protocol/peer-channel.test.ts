import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DataConnection } from 'peerjs';
import type { Message } from './messages';
import { framedChannelFromConnection, openFramedChannel } from './peer-channel';
import { FakeChannel, sampleMessages } from './messages.test-helper';

/** The parts of a PeerJS DataConnection that peer-channel uses. */
class FakeConnection {
  open = false;
  readonly peer = 'remote-peer';
  dataChannel: FakeChannel | null = null;
  closeCalls = 0;
  private readonly handlers = new Map<string, Set<(...args: unknown[]) => void>>();
  constructor(readonly serialization: string) {}
  on(event: string, fn: (...args: unknown[]) => void) {
    if (!this.handlers.has(event)) this.handlers.set(event, new Set());
    this.handlers.get(event)!.add(fn);
    return this;
  }
  off(event: string, fn: (...args: unknown[]) => void) {
    this.handlers.get(event)?.delete(fn);
    return this;
  }
  emit(event: string, ...args: unknown[]) {
    for (const fn of [...(this.handlers.get(event) ?? [])]) fn(...args);
  }
  handlerCount(event: string) {
    return this.handlers.get(event)?.size ?? 0;
  }
  close() {
    this.closeCalls++;
    if (!this.open) return;
    this.open = false;
    this.emit('close');
  }
  asConn() {
    return this as unknown as DataConnection;
  }
}

test('only raw connections are accepted, and only once they have a data channel', () => {
  assert.throws(
    () => framedChannelFromConnection(new FakeConnection('binary').asConn()),
    /needs serialization 'raw', got 'binary'/,
  );
  assert.throws(
    () => framedChannelFromConnection(new FakeConnection('raw').asConn()),
    /data connection to remote-peer has no data channel yet; wait for its 'open' event/,
  );
});

test('messages flow over the connection’s data channel; closing either side closes both', async () => {
  const [left, right] = FakeChannel.pair();
  const connA = new FakeConnection('raw');
  const connB = new FakeConnection('raw');
  connA.dataChannel = left;
  connB.dataChannel = right;
  connA.open = connB.open = true;
  const a = framedChannelFromConnection(connA.asConn());
  const b = framedChannelFromConnection(connB.asConn());
  const got = new Promise<Message>((resolve) => (b.onMessage = resolve));
  const hello = sampleMessages(2).hello;
  await a.send(hello);
  assert.deepEqual(await got, hello);
  assert.equal(a.bytesSent, b.bytesReceived);
  // FramedChannel.close closes the PeerJS connection...
  a.close();
  assert.equal(connA.closeCalls, 1);
  // ...and a connection closed by PeerJS closes the FramedChannel.
  let closed = false;
  b.onClose = () => (closed = true);
  connB.emit('close');
  assert.equal(b.closed, true);
  assert.equal(closed, true);
});

test('openFramedChannel waits for the connection to open, and rejects if it closes first', async () => {
  const conn = new FakeConnection('raw');
  const pending = openFramedChannel(conn.asConn());
  const [left] = FakeChannel.pair();
  conn.dataChannel = left;
  conn.open = true;
  conn.emit('open');
  const ch = await pending;
  assert.equal(ch.closed, false);
  assert.equal(conn.handlerCount('open'), 0, 'its listeners are removed');

  const failing = new FakeConnection('raw');
  const p2 = openFramedChannel(failing.asConn());
  failing.emit('close');
  await assert.rejects(p2, /data connection to remote-peer closed before it opened/);
  const erroring = new FakeConnection('raw');
  const p3 = openFramedChannel(erroring.asConn());
  erroring.emit('error', new Error('negotiation failed'));
  await assert.rejects(p3, /data connection to remote-peer failed: negotiation failed/);
});
