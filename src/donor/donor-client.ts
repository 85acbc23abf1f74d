// The donor's main-thread side: the WebRTC link to the coordinator (PeerJS, raw data channel with
// our own framing) and the hand-off of jobs, weights and assignments to the training worker.
// WebRTC is not available inside workers, so the page owns the connection and the worker the GPU.
import { Peer, type DataConnection } from 'peerjs';
import type { Remote } from 'comlink';
import { framedChannelFromConnection } from '../protocol/peer-channel';
import type { FramedChannel } from '../protocol/channel';
import type { BodyOf, HeaderOf, Message, MessageKind } from '../protocol/messages';
import { COORDINATOR_KINDS, makeMessage, PROTOCOL_VERSION } from '../protocol/messages';
import type { TrainerWorkerApi } from '../worker/api';

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
}

export interface DonorConfig {
  peerPath: string;
  coordinatorPeerId: string;
  /** STUN/TURN servers the coordinator recommends; [] on loopback and LANs. */
  iceServers: RTCIceServer[];
}

export class DonorClient {
  readonly stats: DonorStats = {
    state: 'starting',
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
  };
  private peer: Peer | null = null;
  private channel: FramedChannel | null = null;
  private paused = false;
  private jobId: string | null = null;
  private paramCount = 0;
  private closed = false;
  private reconnectDelay = 1000;
  /** Serializes work from incoming messages: weights must land before the assignment that uses them. */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly origin: string,
    private readonly donorId: string,
    private readonly worker: Remote<TrainerWorkerApi>,
    private readonly onChange: (s: DonorStats) => void,
  ) {}

  async start(): Promise<void> {
    this.set({ state: 'starting' });
    // ?encode=gpu|cpu|auto picks where updates are encoded (tests force the GPU path on SwiftShader).
    const mode = new URLSearchParams(globalThis.location?.search ?? '').get('encode');
    const info = await this.worker.init(mode === 'gpu' || mode === 'cpu' ? { encode: mode } : {});
    this.set({ adapter: info.adapter });
    await this.connect();
  }

  setPaused(paused: boolean): void {
    this.paused = paused;
    this.set({ state: paused ? 'paused' : 'waiting' });
    void this.send('status', { state: paused ? 'paused' : 'idle' });
  }

  close(): void {
    this.closed = true;
    this.peer?.destroy();
  }

  private set(p: Partial<DonorStats>): void {
    Object.assign(this.stats, p);
    if (this.channel) {
      this.stats.bytesSent = this.channel.stats.bytesSent;
      this.stats.bytesReceived = this.channel.stats.bytesReceived;
    }
    this.onChange(this.stats);
  }

  private fail(e: unknown): void {
    const msg = e instanceof Error ? e.message : String(e);
    console.error(`starling donor: ${msg}`);
    this.set({ state: 'error', error: msg });
  }

  private async connect(): Promise<void> {
    this.set({ state: 'connecting' });
    const res = await fetch(`${this.origin}/api/donor/config`);
    if (!res.ok) throw new Error(`coordinator config: HTTP ${res.status}`);
    const cfg = (await res.json()) as DonorConfig;
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
    peer.on('error', (e) => {
      console.warn(`starling donor peer error: ${e.type ?? ''} ${e.message}`);
      if (!this.channel) this.scheduleReconnect();
    });
    peer.on('open', () => {
      const conn = peer.connect(cfg.coordinatorPeerId, { serialization: 'raw', reliable: true });
      conn.on('open', () => this.onOpen(conn));
      conn.on('close', () => {
        this.channel = null;
        this.scheduleReconnect();
      });
      conn.on('error', (e) => console.warn(`starling donor connection error: ${e.message}`));
    });
  }

  private scheduleReconnect(): void {
    if (this.closed) return;
    const peer = this.peer;
    this.peer = null;
    peer?.destroy();
    this.set({ state: 'connecting' });
    const delay = this.reconnectDelay;
    this.reconnectDelay = Math.min(this.reconnectDelay * 2, 15000);
    setTimeout(() => void this.connect().catch((e) => this.fail(e)), delay);
  }

  private onOpen(conn: DataConnection): void {
    this.reconnectDelay = 1000;
    const ch = framedChannelFromConnection(conn, { accept: COORDINATOR_KINDS });
    this.channel = ch;
    ch.onMessage = (m) => {
      this.queue = this.queue.then(() => this.handle(m)).catch((e) => this.fail(e));
    };
    ch.onError = (e) => console.warn(`starling donor: rejected a message from the coordinator: ${e.message}`);
    void this.send('hello', {
      donorId: this.donorId,
      adapter: this.stats.adapter.slice(0, 200),
      userAgent: navigator.userAgent.slice(0, 300),
      protocol: PROTOCOL_VERSION,
    });
    this.set({ state: 'waiting' });
  }

  private async send<K extends MessageKind>(kind: K, header: HeaderOf<K>, body?: BodyOf<K>): Promise<void> {
    if (!this.channel) return;
    await this.channel.send(makeMessage(kind, header, body));
    this.set({});
  }

  private async handle(m: Message): Promise<void> {
    switch (m.kind) {
      case 'job': {
        const h = m.header;
        const { vocab: _vocab, ...job } = h;
        const { cachedVersion, paramCount } = await this.worker.loadJob(job, this.origin);
        this.paramCount = paramCount;
        this.jobId = h.jobId;
        this.set({ job: `${h.name} (${h.jobId})`, state: this.paused ? 'paused' : 'waiting' });
        await this.send('ready', { jobId: h.jobId, version: cachedVersion });
        if (this.paused) await this.send('status', { state: 'paused' });
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
            await this.send('ready', { jobId: a.jobId, version: -1 });
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
