// The coordinator process: HTTP (the built app, the researcher API, donor routes), PeerJS
// signalling, the coordinator's own WebRTC peer, and the job runner — all on one port.
import express from 'express';
import { createServer, type Server } from 'node:http';
import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { Store } from './store';
import { apiErrorHandler, createApiRouter, type RateLimits } from './api';
import { securityHeaders } from './security-headers';
import type { DonorConfig } from './api-schemas';
import { loadOrCreateToken } from './auth';
import { loadOrCreatePeerId } from './peer-id';
import { attachPeerServer, createNodePeer } from './rtc-node';
import { DonorHub } from './donor-hub';
import { heartbeatSettings, type HeartbeatSettings } from '../src/protocol/heartbeat';
import { Runner } from './job-runner';

export interface ServeOptions {
  port?: number;
  host?: string;
  dataDir?: string;
  /** Folders besides dataDir that jobs' `file:` sources may name (--data-root); each must exist. */
  dataRoots?: readonly string[];
  token?: string;
  /** Folder of the built app (vite build). */
  appDir?: string;
  log?: (line: string) => void;
  /** Per-IP request limits on the API; default DEFAULT_RATE_LIMITS (coordinator/rate-limits.ts). */
  rateLimits?: Partial<RateLimits>;
  /** ICE servers for donors behind NAT (STARLING_ICE_SERVERS as JSON); none on loopback/LAN. */
  iceServers?: RTCIceServer[];
  /** Heartbeat on every donor channel (defaults in src/protocol/heartbeat.ts: beat 2 s, timeout 8 s). */
  heartbeat?: Partial<HeartbeatSettings>;
}

export interface RunningServer {
  url: string;
  port: number;
  token: string;
  tokenCreated: boolean;
  dataDir: string;
  store: Store;
  runner: Runner;
  hub: DonorHub;
  /** Shard downloads served (a donor with its shard cached in IndexedDB makes none). */
  counters: { shardDownloads: number };
  close(): Promise<void>;
}

export const PEER_PATH = '/peerjs';

export async function startServer(opts: ServeOptions = {}): Promise<RunningServer> {
  const log = opts.log ?? ((l: string) => console.log(`[coordinator] ${l}`));
  const host = opts.host ?? '127.0.0.1';
  const dataDir = resolve(opts.dataDir ?? '.starling');
  mkdirSync(dataDir, { recursive: true });
  const { token, created } = loadOrCreateToken(dataDir, opts.token ?? process.env.STARLING_TOKEN);
  const store = Store.open(dataDir);
  const runner = new Runner(store, dataDir, log);

  const iceServers = opts.iceServers ?? parseIceServers(process.env.STARLING_ICE_SERVERS);
  const app = express();
  app.disable('x-powered-by');
  app.use(securityHeaders());
  const http: Server = createServer(app);
  // Stable per data directory, so donors find a restarted coordinator under the same id.
  const { peerId: coordinatorPeerId } = loadOrCreatePeerId(dataDir);
  const counters = { shardDownloads: 0 };
  app.use('/api/donor/jobs/:id/shards/:n', (_req, _res, next) => {
    counters.shardDownloads++;
    next();
  });
  // Donor pages beat and time out as this coordinator does (a page's ?hb=/?hbTimeout= still win).
  const heartbeat = heartbeatSettings(opts.heartbeat);
  const donorConfig: DonorConfig = { peerPath: PEER_PATH, coordinatorPeerId, iceServers, heartbeat };
  app.use(
    createApiRouter({
      store,
      runner,
      token,
      dataDir,
      dataRoots: opts.dataRoots,
      rateLimits: opts.rateLimits,
      donorConfig,
    }),
  );
  const signalling = attachPeerServer(app, http, PEER_PATH);

  const appDir = resolve(opts.appDir ?? 'dist');
  if (existsSync(appDir)) {
    app.use(express.static(appDir, { index: 'index.html' }));
    app.get('/console', (_req, res) => res.sendFile(resolve(appDir, 'console.html')));
  } else {
    app.get('/', (_req, res) =>
      res.status(503).type('text/plain').send(`The app is not built: run "npm run build" (looked in ${appDir}).`),
    );
  }
  // Unknown routes and thrown errors answer JSON naming the problem (a client's error a 4xx with no
  // stack logged, e.g. a bad escape caught while matching the path); the process keeps serving.
  app.use((req, res) => res.status(404).json({ error: `no route ${req.method} ${req.path}` }));
  app.use(apiErrorHandler(log));

  await new Promise<void>((ok, fail) => {
    http.once('error', fail);
    http.listen(opts.port ?? 8080, host, () => ok());
  });
  const port = (http.address() as AddressInfo).port;
  const url = `http://${host === '0.0.0.0' || host === '::' ? 'localhost' : host}:${port}`;

  const peer = await createNodePeer({ host: '127.0.0.1', port, path: PEER_PATH, id: coordinatorPeerId });
  const hub = new DonorHub(runner, log, { heartbeat });
  hub.listen(peer);
  await runner.resumeRunning();

  return {
    url,
    port,
    token,
    tokenCreated: created,
    dataDir,
    store,
    runner,
    hub,
    counters,
    async close() {
      for (const j of store.listJobs()) if (runner.activeEngine()?.cfg.jobId === j.id) runner.activeEngine()?.stop();
      hub.closeAll();
      peer.destroy();
      signalling.close();
      http.closeAllConnections?.();
      await new Promise<void>((r) => http.close(() => r()));
      store.close();
    },
  };
}

function parseIceServers(env: string | undefined): RTCIceServer[] {
  if (!env) return [];
  try {
    const v = JSON.parse(env) as unknown;
    if (!Array.isArray(v)) throw new Error('not an array');
    return v as RTCIceServer[];
  } catch (e) {
    throw new Error(`STARLING_ICE_SERVERS must be a JSON array of RTCIceServer objects: ${(e as Error).message}`);
  }
}
