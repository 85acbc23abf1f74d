// Accepts donor connections on the coordinator's own WebRTC peer, turns each into a DonorLink
// once it has said hello, and routes its messages to the job runner. A donor that misbehaves gets
// an `error` message naming the problem; the hub and every other donor carry on. Each channel runs a
// heartbeat: a donor silent past the timeout (its page or machine died without closing the channel)
// is closed and detached at once, so its round stops waiting for it.
import type { DataConnection, Peer } from 'peerjs';
import { framedChannelFromConnection } from '../src/protocol/peer-channel';
import type { FramedChannel } from '../src/protocol/channel';
import { DONOR_KINDS, makeMessage, type Message } from '../src/protocol/messages';
import {
  heartbeatSettings,
  startHeartbeat,
  type HeartbeatClock,
  type HeartbeatSettings,
} from '../src/protocol/heartbeat';
import type { DonorLink } from './job-engine';

export interface HubTarget {
  attachDonor(link: DonorLink): void;
  detachDonor(donorId: string, reason: string): void;
  onDonorMessage(donorId: string, m: Message): void;
}

export interface HubStats {
  connections: number;
  rejectedMessages: number;
  /** Channels closed because the donor fell silent past the heartbeat timeout. */
  timedOut: number;
}

export interface HubOptions {
  /** Beat period and silence timeout (defaults in src/protocol/heartbeat.ts: 2 s, 8 s). */
  heartbeat?: Partial<HeartbeatSettings>;
  /** For tests: a fake clock for the heartbeat timers. */
  clock?: HeartbeatClock;
}

/** Any one donor may not have more than this many protocol errors before it is disconnected. */
const MAX_ERRORS_PER_DONOR = 20;

export class DonorHub {
  readonly stats: HubStats = { connections: 0, rejectedMessages: 0, timedOut: 0 };
  private readonly links = new Map<string, { link: DonorLink; ch: FramedChannel }>();
  private readonly heartbeat: HeartbeatSettings;

  constructor(
    private readonly target: HubTarget,
    private readonly log: (line: string) => void,
    private readonly options: HubOptions = {},
  ) {
    this.heartbeat = heartbeatSettings(options.heartbeat); // a bad setting fails at start, not per donor
  }

  /** Serves every data connection made to `peer`. */
  listen(peer: Peer): void {
    peer.on('connection', (conn: DataConnection) => {
      conn.on('open', () => this.serve(framedChannelFromConnection(conn, { accept: DONOR_KINDS }), conn.peer));
      conn.on('error', (e) => this.log(`donor connection error: ${e.message}`));
    });
  }

  /**
   * Serves one donor's channel (a PeerJS connection's in production, an in-memory one in tests);
   * `label` names it in log lines until it has said hello. The channel should accept DONOR_KINDS only.
   */
  serve(ch: FramedChannel, label: string): void {
    this.stats.connections++;
    let donorId: string | null = null;
    let errors = 0;
    const reject = (what: string) => {
      this.stats.rejectedMessages++;
      errors++;
      this.log(`rejected message from ${donorId ?? label}: ${what}`);
      void ch.send({ kind: 'error', header: { message: what.slice(0, 500) } }).catch(() => {});
      if (errors > MAX_ERRORS_PER_DONOR) {
        this.log(`disconnecting ${donorId ?? label}: more than ${MAX_ERRORS_PER_DONOR} bad messages`);
        ch.close();
      }
    };
    /** Forgets this channel's donor (if it is still the current one) and tells the runner why. */
    const detach = (reason: string) => {
      if (donorId && this.links.get(donorId)?.ch === ch) {
        this.links.delete(donorId);
        this.target.detachDonor(donorId, reason);
      }
    };
    const beat = startHeartbeat(
      ch,
      'pong',
      (silentMs) => {
        this.stats.timedOut++;
        const reason = `no message for ${(silentMs / 1000).toFixed(1)} s (heartbeat timeout)`;
        this.log(`disconnecting ${donorId ?? label}: ${reason}`);
        // Detach first: closing a channel whose far end died may never report back.
        detach(reason);
        ch.close();
      },
      this.heartbeat,
      this.options.clock,
    );
    ch.onError = (e) => reject(e.message);
    ch.onMessage = (m) => {
      try {
        if (m.kind === 'ping') return; // it counted as life when its frame arrived
        if (m.kind === 'hello') {
          if (donorId) throw new Error('hello sent twice on one connection');
          donorId = m.header.donorId;
          const id = donorId;
          const link: DonorLink = {
            donorId: id,
            adapter: m.header.adapter,
            send: (kind, header, body) => ch.send(makeMessage(kind, header, body)),
            close: () => ch.close(),
            // A round's bytes are training traffic: the heartbeats' 30-byte frames are left out.
            bytesSent: () => ch.stats.bytesSent - ch.stats.heartbeatBytesSent,
            bytesReceived: () => ch.stats.bytesReceived - ch.stats.heartbeatBytesReceived,
          };
          const prev = this.links.get(id);
          if (prev) prev.ch.close();
          this.links.set(id, { link, ch });
          this.target.attachDonor(link);
          return;
        }
        if (!donorId) throw new Error(`a ${m.kind} message before hello; say hello first`);
        this.target.onDonorMessage(donorId, m);
      } catch (e) {
        reject(e instanceof Error ? e.message : String(e));
      }
    };
    ch.onClose = () => {
      beat.stop();
      detach('connection closed');
    };
    if (ch.closed) ch.onClose();
  }

  closeAll(): void {
    for (const { ch } of [...this.links.values()]) ch.close();
    this.links.clear();
  }
}
