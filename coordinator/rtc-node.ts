// PeerJS in Node on @roamhq/wrtc, and the `peer` package's signalling server mounted on an express app.
//
// PeerJS is written for browsers: it reads RTCPeerConnection, WebSocket, navigator and location as
// globals, and probes RTCPeerConnection while its module loads. So the globals are installed first
// and peerjs is imported dynamically afterwards.
import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { createRequire } from 'node:module';
import type * as Wrtc from '@roamhq/wrtc';
import type { Express } from 'express';
import { ExpressPeerServer } from 'peer';
import type { DataConnection, Peer, PeerOptions } from 'peerjs';
import { WebSocket as WsWebSocket, WebSocketServer, type ServerOptions as WsServerOptions } from 'ws';
import { FramedChannel, type FramedChannelOptions } from '../src/protocol/channel';
import { framedChannelFromConnection, openFramedChannel } from '../src/protocol/peer-channel';

export { framedChannelFromConnection, openFramedChannel, FramedChannel };
export type { FramedChannelOptions };

const require = createRequire(import.meta.url);

/**
 * Recent signalling-socket errors by URL, so a failed createNodePeer can say why (PeerJS only says "Lost connection").
 */
const recentSocketErrors: { url: string; message: string }[] = [];

/**
 * ws's WebSocket throws when it emits 'error' with no listener, and PeerJS only sets onclose/onmessage
 * (browsers never throw there). A failed connection still closes, which PeerJS reports, so the error
 * itself only needs to be kept for the message.
 */
class NodeWebSocket extends WsWebSocket {
  constructor(address: string | URL, protocols?: string | string[]) {
    super(address, protocols);
    const url = String(address);
    this.on('error', (err: Error) => {
      recentSocketErrors.push({ url, message: err.message });
      if (recentSocketErrors.length > 16) recentSocketErrors.shift();
    });
  }
}

let installed = false;

/**
 * Installs the browser globals PeerJS needs (idempotent). Globals that already exist are left alone
 * (newer Node has its own WebSocket and navigator). `window` is the global object, as in a browser.
 */
export function installNodeWebRtcGlobals(): void {
  if (installed) return;
  const wrtc = require('@roamhq/wrtc') as typeof Wrtc;
  const g = globalThis as Record<string, unknown>;
  const define = (name: string, value: unknown) => {
    if (g[name] === undefined) {
      Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
    }
  };
  define('RTCPeerConnection', wrtc.RTCPeerConnection);
  define('RTCSessionDescription', wrtc.RTCSessionDescription);
  define('RTCIceCandidate', wrtc.RTCIceCandidate);
  define('RTCDataChannel', wrtc.RTCDataChannel);
  define('WebSocket', NodeWebSocket);
  // A user agent no browser check matches, so webrtc-adapter leaves wrtc's classes unshimmed.
  define('navigator', { userAgent: `Node.js/${process.versions.node}`, platform: process.platform });
  define('location', { protocol: 'http:', hostname: 'localhost', host: 'localhost', href: 'http://localhost/' });
  define('window', globalThis);
  installed = true;
}

export interface NodePeerOptions {
  host: string;
  port: number;
  /** Where the PeerServer is mounted, e.g. '/peerjs'. */
  path?: string;
  /** Our peer id; the server assigns one when omitted. */
  id?: string;
  /** PeerServer key (default 'peerjs'). */
  key?: string;
  secure?: boolean;
  /**
   * ICE configuration. Default: no ICE servers (host candidates only), which is what loopback and LAN
   * need and what a machine without internet can use; pass STUN/TURN servers for donors behind NAT.
   */
  config?: RTCConfiguration;
  /** PeerJS log level 0..3. */
  debug?: 0 | 1 | 2 | 3;
  /** Give up if the server has not confirmed our id by then (default 15 s). */
  openTimeoutMs?: number;
}

/** Creates a PeerJS peer in Node and resolves once the PeerServer has accepted it. */
export async function createNodePeer(options: NodePeerOptions): Promise<Peer> {
  installNodeWebRtcGlobals();
  // Under tsx this is the ESM build; under Playwright's CJS transform the class sits on `default`.
  // peerjs's typings describe only the ESM shape, hence the cast to both shapes.
  const mod = (await import('peerjs')) as {
    Peer?: typeof Peer;
    default?: { Peer?: typeof Peer } & typeof Peer;
  };
  const PeerClass = (mod.Peer ?? mod.default?.Peer ?? mod.default) as typeof Peer;
  const peerOptions: PeerOptions = {
    host: options.host,
    port: options.port,
    path: options.path ?? '/',
    key: options.key ?? 'peerjs',
    secure: options.secure ?? false,
    config: options.config ?? { iceServers: [] },
    debug: options.debug ?? 0,
  };
  const peer = options.id ? new PeerClass(options.id, peerOptions) : new PeerClass(peerOptions);
  const timeoutMs = options.openTimeoutMs ?? 15_000;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      finish(new Error(`PeerServer at ${options.host}:${options.port} did not accept the peer within ${timeoutMs} ms`));
    }, timeoutMs);
    const onOpen = () => finish();
    const onError = (err: Error) => {
      const where = `//${options.host}:${options.port}/`;
      const socketError = [...recentSocketErrors]
        .reverse()
        .find((e) => e.url.includes(where) && (!peer.id || e.url.includes(`id=${peer.id}&`)));
      const cause = socketError ? ` (signalling socket: ${socketError.message})` : '';
      finish(
        new Error(
          `PeerJS peer failed to open at ${options.host}:${options.port}${peerOptions.path}: ${err.message}${cause}`,
        ),
      );
    };
    function finish(err?: Error) {
      clearTimeout(timer);
      peer.off('open', onOpen);
      peer.off('error', onError);
      if (err) {
        peer.destroy();
        reject(err);
      } else resolve();
    }
    peer.on('open', onOpen);
    peer.on('error', onError);
  });
  return peer;
}

/**
 * Opens a raw data connection from `peer` to `remoteId` and runs a FramedChannel over it. Rejects if
 * the server reports the remote peer unknown, the connection fails, or it is not open within
 * `openTimeoutMs` (default 15 s); the half-open connection is closed then.
 */
export async function connectFramed(
  peer: Peer,
  remoteId: string,
  options: FramedChannelOptions & { label?: string; metadata?: unknown; openTimeoutMs?: number } = {},
): Promise<FramedChannel> {
  const conn: DataConnection = peer.connect(remoteId, {
    serialization: 'raw',
    reliable: true,
    label: options.label,
    metadata: options.metadata,
  });
  const timeoutMs = options.openTimeoutMs ?? 15_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onPeerError: ((err: Error & { type?: string }) => void) | undefined;
  // PeerJS reports an unknown remote id on the peer, not on the connection, which then never opens.
  const failure = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`data connection to ${remoteId} did not open within ${timeoutMs} ms`)),
      timeoutMs,
    );
    onPeerError = (err) => {
      if (err.type === 'peer-unavailable' && err.message.includes(remoteId))
        reject(new Error(`${err.message} (peer-unavailable)`));
    };
    peer.on('error', onPeerError);
  });
  try {
    return await Promise.race([openFramedChannel(conn, options), failure]);
  } catch (e) {
    conn.close();
    throw e;
  } finally {
    clearTimeout(timer);
    peer.off('error', onPeerError);
  }
}

export interface PeerServerHandle {
  /** The `peer` package's express sub-app; listen to its 'connection' / 'disconnect' events. */
  peerServer: ReturnType<typeof ExpressPeerServer>;
  /** Stops the server's timers and closes its WebSocket clients; the http server is the caller's. */
  close(): void;
}

export interface AttachPeerServerOptions {
  key?: string;
  /** Drop a client whose heartbeat is older than this (ms); peer's default 60 s. */
  aliveTimeoutMs?: number;
  /** Max connected peers; peer's default 5000. */
  concurrentLimit?: number;
  /** How long signalling for an absent peer waits before the sender is told it is unavailable; peer's default 5 s. */
  expireTimeoutMs?: number;
}

/**
 * Mounts PeerJS signalling on `app` at `path` (clients use the same `path`). Returns a handle whose
 * close() releases everything the server started, so a test or a shutting-down coordinator exits.
 */
export function attachPeerServer(
  app: Express,
  httpServer: HttpServer | HttpsServer,
  path = '/peerjs',
  options: AttachPeerServerOptions = {},
): PeerServerHandle {
  let wss: WebSocketServer | undefined;
  const peerServer = ExpressPeerServer(httpServer, {
    path: '/',
    key: options.key ?? 'peerjs',
    alive_timeout: options.aliveTimeoutMs ?? 60_000,
    concurrent_limit: options.concurrentLimit ?? 5000,
    expire_timeout: options.expireTimeoutMs ?? 5000,
    // the sweep that enforces expire_timeout runs this often (ms)
    cleanup_out_msgs: Math.min(1000, options.expireTimeoutMs ?? 1000),
    allow_discovery: false,
    createWebSocketServer: (wsOptions: WsServerOptions) => {
      wss = new WebSocketServer(wsOptions);
      return wss;
    },
  });
  // peer@1.0.2 starts two self-rearming setTimeout loops when mounted and offers no way to stop
  // them, so they would keep the process alive forever; capture them to be able to clear them.
  const timers = captureTimers(() => {
    app.use(path, peerServer);
  });
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    timers.stop();
    if (wss) {
      for (const client of wss.clients) client.terminate();
      wss.close();
    }
  };
  // Safety net; but http.close() only completes once the signalling WebSockets are gone, so call
  // the handle's close() before closing the http server.
  httpServer.once('close', close);
  return { peerServer, close };
}

/**
 * Runs `fn` with setTimeout/setInterval wrapped so that every timer it creates, and every timer those
 * timers' callbacks create (synchronously), is tracked; `stop()` clears them all and stops re-arming.
 * Only code running inside the scope is affected.
 */
function captureTimers(fn: () => void): { stop(): void } {
  const live = new Set<ReturnType<typeof setTimeout>>();
  const realSetTimeout = globalThis.setTimeout;
  const realSetInterval = globalThis.setInterval;
  let stopped = false;
  let depth = 0;

  const inScope = <T>(run: () => T): T => {
    if (depth++ === 0) {
      (globalThis as Record<string, unknown>).setTimeout = trackedTimeout;
      (globalThis as Record<string, unknown>).setInterval = trackedInterval;
    }
    try {
      return run();
    } finally {
      if (--depth === 0) {
        globalThis.setTimeout = realSetTimeout;
        globalThis.setInterval = realSetInterval;
      }
    }
  };

  function trackedTimeout(cb: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) {
    const t: ReturnType<typeof setTimeout> = realSetTimeout(() => {
      live.delete(t);
      if (!stopped) inScope(() => cb(...args));
    }, ms);
    live.add(t);
    // Timers cleared by their owner (never fired) would otherwise stay in the set. Node's Timeout
    // marks them with `_destroyed`, which its types do not declare, hence the cast.
    if (live.size > 256)
      for (const x of live) if ((x as typeof x & { _destroyed?: boolean })._destroyed) live.delete(x);
    return t;
  }
  function trackedInterval(cb: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) {
    const t: ReturnType<typeof setInterval> = realSetInterval(() => {
      if (!stopped) inScope(() => cb(...args));
    }, ms);
    live.add(t);
    return t;
  }

  inScope(fn);
  return {
    stop() {
      stopped = true;
      for (const t of live) clearTimeout(t);
      live.clear();
    },
  };
}
