// Two Node peers (PeerJS on @roamhq/wrtc) meet through the `peer` package's PeerServer on 127.0.0.1,
// open a raw DataConnection and exchange messages through FramedChannel. The exchange runs in a child
// process (this file, in child mode), which must exit by itself once done: proof of a clean shutdown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import express from 'express';
import type { DataConnection, Peer } from 'peerjs';
import { Rng } from '../src/util/rng';
import { splitIntoFrames } from '../src/protocol/frames';
import type { Message } from '../src/protocol/messages';
import { randomBytes, sampleMessages } from '../src/protocol/messages.test-helper';
import { encodeMessage } from '../src/protocol/wire';
import {
  attachPeerServer,
  connectFramed,
  createNodePeer,
  framedChannelFromConnection,
  installNodeWebRtcGlobals,
  type AttachPeerServerOptions,
  type FramedChannel,
  type PeerServerHandle,
} from './rtc-node';

const PATH = '/peerjs';

interface Signalling {
  http: Server;
  handle: PeerServerHandle;
  port: number;
}

async function startSignalling(options?: AttachPeerServerOptions): Promise<Signalling> {
  const app = express();
  const http = createServer(app);
  const handle = attachPeerServer(app, http, PATH, options);
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(0, '127.0.0.1', () => resolve());
  });
  return { http, handle, port: (http.address() as AddressInfo).port };
}

async function stopSignalling(s: Signalling): Promise<void> {
  s.handle.close();
  s.http.closeAllConnections();
  await new Promise<void>((resolve) => s.http.close(() => resolve()));
}

/** Frame bytes a message occupies on the wire, from the encoder and the splitter. */
function wireBytes(msg: Message): number {
  return splitIntoFrames(0, encodeMessage(msg)).reduce((a, f) => a + f.byteLength, 0);
}

function nextMessages(ch: FramedChannel, n: number): Promise<Message[]> {
  const got: Message[] = [];
  return new Promise((resolve, reject) => {
    ch.onError = reject;
    ch.onMessage = (m) => {
      got.push(m);
      if (got.length === n) resolve(got);
    };
  });
}

interface ExchangeResult {
  aSent: number;
  bReceived: number;
  bSent: number;
  aReceived: number;
  /** Frame bytes of what alpha sent to beta, and of what beta sent to alpha. */
  expectedToB: number;
  expectedToA: number;
}

/** Connects two peers, exchanges a 5 MiB weights message and a hello both ways, and tears down. */
async function exchange(port: number): Promise<ExchangeResult> {
  const peers: Peer[] = [];
  try {
    const alpha = await createNodePeer({ host: '127.0.0.1', port, path: PATH, id: `alpha-${process.pid}` });
    peers.push(alpha);
    const beta = await createNodePeer({ host: '127.0.0.1', port, path: PATH, id: `beta-${process.pid}` });
    peers.push(beta);

    const incoming = new Promise<FramedChannel>((resolve) => {
      beta.on('connection', (conn: DataConnection) =>
        conn.on('open', () => resolve(framedChannelFromConnection(conn))),
      );
    });
    const a = await connectFramed(alpha, beta.id);
    const b = await incoming;

    const rng = new Rng(9);
    const n = (5 * 1024 * 1024) / 4;
    const weights = (version: number): Message => ({
      kind: 'weights',
      header: { jobId: 'job-1', version, n, encoding: 'f32' },
      body: randomBytes(rng, n * 4),
    });
    const hello = sampleMessages(4).hello;
    const toB = [weights(1), hello];
    const toA = [weights(2), { ...hello, header: { ...hello.header, donorId: 'other-side' } } as Message];

    const atB = nextMessages(b, toB.length);
    const atA = nextMessages(a, toA.length);
    await Promise.all([...toB.map((m) => a.send(m)), ...toA.map((m) => b.send(m))]);
    assert.deepEqual(await atB, toB);
    assert.deepEqual(await atA, toA);

    const result: ExchangeResult = {
      aSent: a.bytesSent,
      bReceived: b.bytesReceived,
      bSent: b.bytesSent,
      aReceived: a.bytesReceived,
      expectedToB: toB.reduce((s, m) => s + wireBytes(m), 0),
      expectedToA: toA.reduce((s, m) => s + wireBytes(m), 0),
    };
    const bClosed = new Promise<void>((resolve) => (b.onClose = resolve));
    a.close();
    // closing one end closes the other
    await bClosed;
    return result;
  } finally {
    for (const p of peers) p.destroy();
  }
}

if (process.env.STARLING_RTC_EXIT_CHECK === '1') {
  // Child mode: run once, report, and return; the process must then exit on its own.
  const s = await startSignalling();
  const result = await exchange(s.port);
  await stopSignalling(s);
  process.stdout.write(`${JSON.stringify({ done: true, result })}\n`);
} else {
  // The exchange runs in a child process: a leaked handle (PeerServer timer, socket, peer connection)
  // then shows up as a child that never exits, which fails this test instead of hanging the test run.
  test('two Node peers exchange 5 MiB weights and a hello both ways through a PeerServer on 127.0.0.1, then shut down completely', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, STARLING_RTC_EXIT_CHECK: '1' };
    delete env.NODE_TEST_CONTEXT; // the child is a plain script, not a test-runner child
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    // A leaked handle shows up as a child that reports done but never exits; give it a bounded time.
    const limitMs = 60_000;
    const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; killed: boolean }>(
      (resolve) => {
        const guard = setTimeout(() => {
          child.kill('SIGKILL');
        }, limitMs);
        child.on('exit', (code, signal) => {
          clearTimeout(guard);
          resolve({ code, signal, killed: signal === 'SIGKILL' });
        });
      },
    );
    const report = out.split('\n').find((l) => l.startsWith('{'));
    assert.ok(report, `child printed no report; stderr:\n${err}`);
    assert.equal(
      exit.killed,
      false,
      `child finished the exchange but did not exit within ${limitMs} ms: something was left running`,
    );
    assert.equal(exit.code, 0, `child exited with ${exit.code}; stderr:\n${err}`);
    const { result } = JSON.parse(report) as { result: ExchangeResult };
    assert.ok(result.expectedToB > 5 * 1024 * 1024 && result.expectedToA > 5 * 1024 * 1024);
    assert.equal(result.aSent, result.expectedToB);
    assert.equal(result.bReceived, result.expectedToB);
    assert.equal(result.bSent, result.expectedToA);
    assert.equal(result.aReceived, result.expectedToA);
  });

  test('createNodePeer fails clearly when no PeerServer is listening', async () => {
    // A port that was just free on 127.0.0.1: bind, read it, close.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', () => resolve()));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    await assert.rejects(
      createNodePeer({ host: '127.0.0.1', port, path: PATH, id: 'nobody-home' }),
      /PeerJS peer failed to open at 127\.0\.0\.1:\d+\/peerjs: Lost connection to server\. \(signalling socket: connect ECONNREFUSED 127\.0\.0\.1:\d+\)/,
    );
  });

  test('connecting to a peer id nobody holds fails with the server’s answer', async () => {
    const s = await startSignalling({ expireTimeoutMs: 200 });
    const peer = await createNodePeer({ host: '127.0.0.1', port: s.port, path: PATH, id: `lonely-${process.pid}` });
    try {
      await assert.rejects(
        connectFramed(peer, 'nobody-here'),
        /Could not connect to peer nobody-here \(peer-unavailable\)/,
      );
    } finally {
      peer.destroy();
      await stopSignalling(s);
    }
  });

  test('installing the globals twice is harmless', () => {
    installNodeWebRtcGlobals();
    const pc = globalThis.RTCPeerConnection;
    installNodeWebRtcGlobals();
    assert.equal(globalThis.RTCPeerConnection, pc);
    assert.equal(typeof globalThis.WebSocket, 'function');
  });
}
