// Accepts donor connections on the coordinator's own WebRTC peer, turns each into a DonorLink
// once it has said hello, and routes its messages to the job runner. A donor that misbehaves gets
// an `error` message naming the problem; the hub and every other donor carry on.
import type { DataConnection } from 'peerjs';
import type { Peer } from 'peerjs';
import { framedChannelFromConnection } from '../src/protocol/peer-channel';
import type { FramedChannel } from '../src/protocol/channel';
import { DONOR_KINDS, makeMessage, type Message } from '../src/protocol/messages';
import type { DonorLink } from './job-engine';

export interface HubTarget {
  attachDonor(link: DonorLink): void;
  detachDonor(donorId: string, reason: string): void;
  onDonorMessage(donorId: string, m: Message): void;
}

export interface HubStats {
  connections: number;
  rejectedMessages: number;
}

/** Any one donor may not have more than this many protocol errors before it is disconnected. */
const MAX_ERRORS_PER_DONOR = 20;

export class DonorHub {
  readonly stats: HubStats = { connections: 0, rejectedMessages: 0 };
  private readonly links = new Map<string, { link: DonorLink; ch: FramedChannel; conn: DataConnection }>();

  constructor(
    peer: Peer,
    private readonly target: HubTarget,
    private readonly log: (line: string) => void,
  ) {
    peer.on('connection', (conn) => {
      conn.on('open', () => this.accept(conn));
      conn.on('error', (e) => this.log(`donor connection error: ${e.message}`));
    });
  }

  private accept(conn: DataConnection): void {
    this.stats.connections++;
    const ch = framedChannelFromConnection(conn, {
      accept: DONOR_KINDS,
    });
    let donorId: string | null = null;
    let errors = 0;
    const reject = (what: string) => {
      this.stats.rejectedMessages++;
      errors++;
      this.log(`rejected message from ${donorId ?? conn.peer}: ${what}`);
      void ch.send({ kind: 'error', header: { message: what.slice(0, 500) } }).catch(() => {});
      if (errors > MAX_ERRORS_PER_DONOR) {
        this.log(`disconnecting ${donorId ?? conn.peer}: more than ${MAX_ERRORS_PER_DONOR} bad messages`);
        conn.close();
      }
    };
    ch.onError = (e) => reject(e.message);
    ch.onMessage = (m) => {
      try {
        if (m.kind === 'hello') {
          if (donorId) throw new Error('hello sent twice on one connection');
          donorId = m.header.donorId;
          const id = donorId;
          const link: DonorLink = {
            donorId: id,
            adapter: m.header.adapter,
            send: (kind, header, body) => ch.send(makeMessage(kind, header, body)),
            close: () => conn.close(),
            bytesSent: () => ch.stats.bytesSent,
            bytesReceived: () => ch.stats.bytesReceived,
          };
          const prev = this.links.get(id);
          if (prev) prev.conn.close();
          this.links.set(id, { link, ch, conn });
          this.target.attachDonor(link);
          return;
        }
        if (!donorId) throw new Error(`a ${m.kind} message before hello; say hello first`);
        this.target.onDonorMessage(donorId, m);
      } catch (e) {
        reject(e instanceof Error ? e.message : String(e));
      }
    };
    conn.on('close', () => {
      if (donorId && this.links.get(donorId)?.conn === conn) {
        this.links.delete(donorId);
        this.target.detachDonor(donorId, 'connection closed');
      }
    });
  }

  closeAll(): void {
    for (const { conn } of this.links.values()) conn.close();
    this.links.clear();
  }
}
