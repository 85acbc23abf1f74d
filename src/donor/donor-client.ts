// The donor's main-thread side: the WebRTC link to the coordinator (PeerJS, raw data channel with
// our own framing) and the hand-off of jobs, weights and assignments to the training worker.
// WebRTC is not available inside workers, so the page owns the connection and the worker the GPU.
// The link is watched both ways (src/protocol/heartbeat.ts): a dead coordinator (heartbeat timeout,
// channel close, the signalling socket's loss) tears everything down, and the client reconnects with
// backoff, re-reading /api/donor/config each try, until the page is closed. It never gives up.
import { Peer, type DataConnection } from 'peerjs';
import type { Remote } from 'comlink';
import { framedChannelFromConnection } from '../protocol/peer-channel';
import type { FramedChannel } from '../protocol/channel';
import type { BodyOf, HeaderOf, Message, MessageKind } from '../protocol/messages';
import { COORDINATOR_KINDS, makeMessage, PROTOCOL_VERSION } from '../protocol/messages';
import { heartbeatSettings, startHeartbeat, type Heartbeat, type HeartbeatSettings } from '../protocol/heartbeat';
import type { TrainerWorkerApi } from '../worker/api';
import { Backoff, type BackoffOptions } from './backoff';

export interface DonorStats {
  state: 'starting' | 'connecting' | 'waiting' | 'training' | 'paused' | 'idle' | 'error';
  adapter: string;
  job: string;
  round: number | null;
  loss: number | null;
  steps: number;
  bytesSent: number;
  bytesReceived: number;
  rounds: number;
  /** Where the last update was encoded: the GPU kernels or the CPU codec ('' before the first). */
  encodedOn: '' | 'gpu' | 'cpu';
  error: string;
  /** While connecting: why the last try failed and when the next one starts ('' once connected). */
  notice: string;
  /** Connections made so far (1 after the first; each reconnect adds one). */
  connections: number;
}

export interface DonorConfig {
  peerPath: string;
  coordinatorPeerId: string;
  /** STUN/TURN servers the coordinator recommends; [] on loopback and LANs. */
  iceServers: RTCIceServer[];
  /** The coordinator's heartbeat settings (absent from coordinators older than protocol 4: defaults). */
  heartbeat?: HeartbeatSettings;
}

export interface DonorClientOptions {
  /**
   * Beat period and silence timeout, overriding the coordinator's (its /api/donor/config; defaults 2 s,
   * 8 s); the page's ?hb= and ?hbTimeout=.
   */
  heartbeat?: Partial<HeartbeatSettings>;
  /** Reconnect delays (default 0.5 s doubling to 10 s, ±30 %). */
  backoff?: BackoffOptions;
  /** One try (config fetch, signalling, data channel open) gives up after this; default 10 s. */
  connectTimeoutMs?: number;
}

function isDonorConfig(v: unknown): v is DonorConfig {
  const c = v as Partial<DonorConfig> | null;
  return (
    typeof c === 'object' &&
    c !== null &&
    typeof c.peerPath === 'string' &&
    typeof c.coordinatorPeerId === 'string' &&
    (c.iceServers === undefined || Array.isArray(c.iceServers)) &&
    (c.heartbeat === undefined ||
      (typeof c.heartbeat === 'object' &&
        c.heartbeat !== null &&
        typeof c.heartbeat.intervalMs === 'number' &&
        typeof c.heartbeat.timeoutMs === 'number'))
  );
}

/** Stats before anything happened (the page renders them before a client exists). */
export function initialDonorStats(state: DonorStats['state']): DonorStats {
  return {
    state,
    adapter: '—',
    job: '—',
    round: null,
    loss: null,
    steps: 0,
    bytesSent: 0,
    bytesReceived: 0,
    rounds: 0,
    encodedOn: '',
    error: '',
    notice: '',
    connections: 0,
  };
}

export class DonorClient {
  readonly stats: DonorStats = initialDonorStats('starting');
  private peer: Peer | null = null;
  private channel: FramedChannel | null = null;
  private beat: Heartbeat | null = null;
  private paused = false;
  private jobId: string | null = null;
  private paramCount = 0;
  private closed = false;
  /** Bumped whenever a connection is given up: handlers of an older one then do nothing. */
  private generation = 0;
  private timers: ReturnType<typeof setTimeout>[] = [];
  /** Bytes of earlier connections, so the page's totals survive a reconnect. */
  private bytesBefore = { sent: 0, received: 0 };
  private readonly backoff: Backoff;
  /** The page's own heartbeat settings (only the ones it set), over the coordinator's. */
  private readonly heartbeatOverride: Partial<HeartbeatSettings>;
  /** The settings of the current connection. */
  private heartbeat: HeartbeatSettings;
  private readonly connectTimeoutMs: number;
  /** Serializes work from incoming messages: weights must land before the assignment that uses them. */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly origin: string,
    private readonly donorId: string,
    private readonly worker: Remote<TrainerWorkerApi>,
    private readonly onChange: (s: DonorStats) => void,
    options: DonorClientOptions = {},
  ) {
    this.heartbeatOverride = Object.fromEntries(
      Object.entries(options.heartbeat ?? {}).filter(([, v]) => v !== undefined),
    );
    this.heartbeat = heartbeatSettings(this.heartbeatOverride);
    this.backoff = new Backoff(options.backoff);
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  }

  async start(): Promise<void> {
    this.set({ state: 'starting' });
    // ?encode=gpu|cpu|auto picks where updates are encoded (tests force the GPU path on SwiftShader).
    const mode = new URLSearchParams(globalThis.location?.search ?? '').get('encode');
    const info = await this.worker.init(mode === 'gpu' || mode === 'cpu' ? { encode: mode } : {});
    this.set({ adapter: info.adapter });
    this.connect();
  }

  setPaused(paused: boolean): void {
    this.paused = paused;
    this.set({ state: paused ? 'paused' : 'waiting' });
    const ch = this.channel;
    if (ch) this.send(ch, 'status', { state: paused ? 'paused' : 'idle' }).catch((e) => this.fail(e));
  }

  close(): void {
    this.closed = true;
    this.teardown();
  }

  private set(p: Partial<DonorStats>): void {
    Object.assign(this.stats, p);
    this.stats.bytesSent = this.bytesBefore.sent + (this.channel?.stats.bytesSent ?? 0);
    this.stats.bytesReceived = this.bytesBefore.received + (this.channel?.stats.bytesReceived ?? 0);
    this.onChange(this.stats);
  }

  private fail(e: unknown): void {
    const msg = e instanceof Error ? e.message : String(e);
    console.error(`starling donor: ${msg}`);
    this.set({ state: 'error', error: msg });
  }

  private after(ms: number, fn: () => void): void {
    this.timers.push(setTimeout(fn, ms));
  }

  /** One try: config, signalling, data channel. Any failure on the way ends in lost() → the next try. */
  private connect(): void {
    if (this.closed) return;
    const gen = ++this.generation;
    this.set({ state: 'connecting' });
    const lost = (why: string) => this.lost(gen, why);
    this.after(this.connectTimeoutMs, () => {
      if (!this.channel) lost(`no connection after ${this.connectTimeoutMs / 1000} s`);
    });
    void this.fetchConfig().then(
      (cfg) => {
        if (gen !== this.generation) return;
        this.heartbeat = this.heartbeatFor(cfg);
        const url = new URL(this.origin);
        const peer = new Peer({
          host: url.hostname,
          port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
          path: cfg.peerPath,
          secure: url.protocol === 'https:',
          debug: 1,
          config: { iceServers: cfg.iceServers ?? [] },
        });
        this.peer = peer;
        // The signalling socket's loss arrives as an error and/or 'disconnected': when the coordinator
        // process died, its data channel may stay silent for long, so both end this connection.
        peer.on('error', (e) => lost(`peer error: ${e.type ?? ''} ${e.message}`));
        peer.on('disconnected', () => lost('signalling connection lost'));
        peer.on('open', () => {
          if (gen !== this.generation) return;
          const conn = peer.connect(cfg.coordinatorPeerId, { serialization: 'raw', reliable: true });
          conn.on('open', () => {
            if (gen === this.generation) this.onOpen(conn, gen);
          });
          conn.on('close', () => lost('data channel closed'));
          conn.on('error', (e) => lost(`data connection error: ${e.message}`));
        });
      },
      (e: unknown) => lost(e instanceof Error ? e.message : String(e)),
    );
  }

  /** The coordinator's heartbeat with the page's overrides; its defaults when the pair is out of range. */
  private heartbeatFor(cfg: DonorConfig): HeartbeatSettings {
    try {
      return heartbeatSettings({ ...cfg.heartbeat, ...this.heartbeatOverride });
    } catch (e) {
      console.warn(`starling donor: heartbeat settings ignored: ${(e as Error).message}`);
      return heartbeatSettings(this.heartbeatOverride);
    }
  }

  private async fetchConfig(): Promise<DonorConfig> {
    let res: Response;
    try {
      res = await fetch(`${this.origin}/api/donor/config`, {
        cache: 'no-store',
        signal: AbortSignal.timeout(this.connectTimeoutMs),
      });
    } catch (e) {
      throw new Error(`coordinator config: ${(e as Error).message}`);
    }
    if (!res.ok) throw new Error(`coordinator config: HTTP ${res.status}`);
    const cfg: unknown = await res.json();
    if (!isDonorConfig(cfg)) throw new Error('coordinator config: not a donor config');
    return cfg;
  }

  /** Gives up connection `gen` (if still current) and schedules the next try. */
  private lost(gen: number, why: string): void {
    if (gen !== this.generation || this.closed) return;
    this.generation++; // from here on, events of the old peer and channel are ignored
    const wasConnected = this.channel !== null;
    this.teardown();
    const delay = this.backoff.next();
    console.warn(`starling donor: ${wasConnected ? 'lost the coordinator' : 'could not connect'} (${why})`);
    this.set({
      state: 'connecting',
      notice: `coordinator unreachable (${why}); retrying in ${(delay / 1000).toFixed(1)} s`,
    });
    this.after(delay, () => this.connect());
  }

  private teardown(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
    this.beat?.stop();
    this.beat = null;
    const ch = this.channel;
    if (ch) {
      this.bytesBefore.sent += ch.stats.bytesSent;
      this.bytesBefore.received += ch.stats.bytesReceived;
      this.channel = null;
      ch.close();
    }
    const peer = this.peer;
    this.peer = null;
    peer?.destroy();
  }

  private onOpen(conn: DataConnection, gen: number): void {
    for (const t of this.timers) clearTimeout(t); // the connect timeout
    this.timers = [];
    const ch = framedChannelFromConnection(conn, { accept: COORDINATOR_KINDS });
    this.channel = ch;
    let heard = false;
    ch.onMessage = (m) => {
      if (!heard) {
        heard = true;
        this.backoff.reset(); // the coordinator answers: the next loss starts from the first delay
      }
      if (m.kind === 'pong') return;
      this.queue = this.queue.then(() => this.handle(m, ch)).catch((e) => this.fail(e));
    };
    ch.onError = (e) => console.warn(`starling donor: rejected a message from the coordinator: ${e.message}`);
    ch.onClose = () => this.lost(gen, 'data channel closed');
    void this.send(ch, 'hello', {
      donorId: this.donorId,
      adapter: this.stats.adapter.slice(0, 200),
      userAgent: navigator.userAgent.slice(0, 300),
      protocol: PROTOCOL_VERSION,
    }).catch((e) => this.fail(e));
    this.beat = startHeartbeat(
      ch,
      'ping',
      (ms) => this.lost(gen, `no message from the coordinator for ${(ms / 1000).toFixed(1)} s`),
      this.heartbeat,
    );
    this.set({ state: this.paused ? 'paused' : 'waiting', notice: '', connections: this.stats.connections + 1 });
  }

  /** Sends on the connection a message came in on; if that one is gone, the reply is dropped. */
  private async send<K extends MessageKind>(
    ch: FramedChannel,
    kind: K,
    header: HeaderOf<K>,
    body?: BodyOf<K>,
  ): Promise<void> {
    if (ch.closed) return;
    try {
      await ch.send(makeMessage(kind, header, body));
    } catch (e) {
      if (!ch.closed) throw e; // an invalid message is a bug; a closed channel is the connection's end
      console.warn(`starling donor: ${kind} not sent, the connection closed`);
    }
    this.set({});
  }

  private async handle(m: Message, ch: FramedChannel): Promise<void> {
    // A message of a connection given up meanwhile: the new connection sends what is needed again.
    if (ch.closed) return;
    switch (m.kind) {
      case 'job': {
        const h = m.header;
        const { vocab: _vocab, ...job } = h;
        const { cachedVersion, paramCount } = await this.worker.loadJob(job, this.origin);
        this.paramCount = paramCount;
        this.jobId = h.jobId;
        this.set({ job: `${h.name} (${h.jobId})`, state: this.paused ? 'paused' : 'waiting' });
        await this.send(ch, 'ready', { jobId: h.jobId, version: cachedVersion });
        if (this.paused) await this.send(ch, 'status', { state: 'paused' });
        break;
      }
      case 'weights': {
        const h = m.header;
        const body = m.body ?? new Uint8Array(0);
        const params = new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength));
        await this.worker.setWeights(h.jobId, h.version, params);
        break;
      }
      case 'assign': {
        const a = m.header;
        if (m.body) {
          // The broadcast step to a.version, for a donor one version behind: applied even when paused,
          // so the weights stay current.
          try {
            await this.worker.applyDelta(a.jobId, a.version - 1, a.version, m.body);
          } catch (e) {
            // Out of step (or a bad payload): say we hold nothing, so the next round brings a snapshot.
            console.warn(
              `starling: broadcast step v${a.version - 1} → v${a.version} not applied: ${(e as Error).message}`,
            );
            await this.send(ch, 'ready', { jobId: a.jobId, version: -1 });
            break;
          }
        }
        if (this.paused || a.jobId !== this.jobId) break;
        this.set({ state: 'training', round: a.round });
        const r = await this.worker.train(a);
        this.set({
          loss: r.loss,
          steps: this.stats.steps + r.steps,
          rounds: this.stats.rounds + 1,
          encodedOn: r.encodedOn,
          state: this.paused ? 'paused' : 'waiting',
        });
        await this.send(
          ch,
          'update',
          {
            jobId: a.jobId,
            round: r.round,
            baseVersion: r.baseVersion,
            steps: r.steps,
            loss: r.loss,
            tokens: r.tokens,
            codec: r.codec,
            n: this.paramCount,
            computeMs: r.computeMs,
          },
          r.update,
        );
        break;
      }
      case 'idle':
        this.set({ state: 'idle', job: `${this.stats.job}`, error: '' });
        break;
      case 'error':
        console.warn(`starling coordinator says: ${m.header.message}`);
        break;
      default:
        break;
    }
  }
}
