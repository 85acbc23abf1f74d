// Messages over a WebRTC data channel: encode → split into ≤64 KiB frames → send with flow control;
// incoming frames → reassemble → decode → onMessage. Works over the browser's RTCDataChannel and
// @roamhq/wrtc's (Node), which differ in one way that matters: wrtc has no bufferedAmountLowThreshold
// and never fires `bufferedamountlow`, so there the sender polls bufferedAmount instead.
import { ProtocolError } from './errors';
import { Reassembler, checkFrameSize, iterateFrames } from './frames';
import {
  DEFAULT_HIGH_WATER_BYTES,
  DEFAULT_LOW_WATER_BYTES,
  FRAME_HEADER_BYTES,
  MAX_BUFFERED_BYTES,
  MAX_FRAME_BYTES,
  MAX_MESSAGE_BYTES,
  MAX_MESSAGES_IN_FLIGHT,
} from './limits';
import type { Message, MessageKind, UpdateCodec } from './messages';
import { decodeMessage, encodeMessage } from './wire';

/** What FramedChannel needs of a data channel; browser and wrtc RTCDataChannels both provide it. */
export interface DataChannelLike {
  readonly readyState: string;
  readonly bufferedAmount: number;
  bufferedAmountLowThreshold?: number;
  binaryType?: string;
  send(data: Uint8Array<ArrayBuffer>): void;
  close(): void;
  addEventListener(type: string, listener: (event: DataChannelEvent) => void): void;
  removeEventListener(type: string, listener: (event: DataChannelEvent) => void): void;
}

/** The fields FramedChannel reads of a data channel's events (message: data; error: error, message). */
export interface DataChannelEvent {
  data?: unknown;
  error?: unknown;
  message?: string;
}

export interface ChannelStats {
  /** Frame bytes handed to the data channel. */
  bytesSent: number;
  /** Frame bytes received from the data channel, rejected ones included. */
  bytesReceived: number;
  framesSent: number;
  framesReceived: number;
  messagesSent: number;
  messagesReceived: number;
  /** Frames refused: invalid ones, and the remaining frames of a message already refused. */
  rejectedFrames: number;
  /** Whole messages that reassembled but failed to decode or validate, or were of a kind not accepted. */
  rejectedMessages: number;
  /** The part of bytesSent / bytesReceived that was heartbeats (ping, pong): overhead, not training traffic. */
  heartbeatBytesSent: number;
  heartbeatBytesReceived: number;
}

export interface FramedChannelOptions {
  /** Frame size used when sending (header included); default and maximum 64 KiB. */
  maxFrameBytes?: number;
  /** Pause sending while bufferedAmount + next frame would pass this; default 1 MiB. */
  highWaterMark?: number;
  /** Resume once bufferedAmount has fallen to this; default 256 KiB. */
  lowWaterMark?: number;
  /** Poll period while waiting to drain on channels without `bufferedamountlow` (wrtc); default 2 ms. */
  pollIntervalMs?: number;
  /** Largest incoming (and outgoing) message; default 64 MiB. */
  maxMessageBytes?: number;
  /** Partially received messages held at once; default 4. */
  maxInFlight?: number;
  /** Kinds this side accepts (e.g. DONOR_KINDS on the coordinator); others are rejected. Default: all. */
  accept?: readonly MessageKind[];
  /** Exact update body size for a codec (e.g. the int8 codec's encodedBytes); see messages.ts. */
  updateBodyBytes?: (codec: UpdateCodec, n: number) => number;
  onMessage?: (msg: Message) => void;
  onError?: (err: Error) => void;
  onClose?: () => void;
  /** How to close the transport (e.g. the PeerJS connection); default: close the data channel. */
  close?: () => void;
}

const isBeat = (kind: MessageKind) => kind === 'ping' || kind === 'pong';

/** Messages kept while no onMessage handler is set; more than this is an error. */
const MAX_UNHANDLED = 16;
/** Safety poll on channels that do fire `bufferedamountlow`, in case an event is never delivered. */
const EVENT_FALLBACK_POLL_MS = 100;

export class FramedChannel {
  readonly stats: ChannelStats = {
    bytesSent: 0,
    bytesReceived: 0,
    framesSent: 0,
    framesReceived: 0,
    messagesSent: 0,
    messagesReceived: 0,
    rejectedFrames: 0,
    rejectedMessages: 0,
    heartbeatBytesSent: 0,
    heartbeatBytesReceived: 0,
  };
  onError: (err: Error) => void;
  onClose: (() => void) | undefined;

  private readonly channel: DataChannelLike;
  private readonly reassembler: Reassembler;
  private readonly maxFrameBytes: number;
  private readonly highWater: number;
  private readonly lowWater: number;
  private readonly pollMs: number;
  private readonly hasLowEvent: boolean;
  private readonly opts: FramedChannelOptions;
  private readonly accept: ReadonlySet<MessageKind> | null;
  private handler: ((msg: Message) => void) | undefined;
  private readonly unhandled: Message[] = [];
  private nextMessageId = 0;
  private sendTail: Promise<void> = Promise.resolve();
  private readonly waiters = new Set<() => void>();
  private isClosed = false;
  private discardedSeen = 0;

  constructor(channel: DataChannelLike, options: FramedChannelOptions = {}) {
    this.channel = channel;
    this.opts = options;
    this.maxFrameBytes = options.maxFrameBytes ?? MAX_FRAME_BYTES;
    this.highWater = options.highWaterMark ?? DEFAULT_HIGH_WATER_BYTES;
    this.lowWater = options.lowWaterMark ?? Math.min(DEFAULT_LOW_WATER_BYTES, Math.floor(this.highWater / 2));
    this.pollMs = options.pollIntervalMs ?? 2;
    checkFrameSize(this.maxFrameBytes);
    if (!(this.highWater >= this.maxFrameBytes && this.highWater + this.maxFrameBytes <= MAX_BUFFERED_BYTES)) {
      throw new RangeError(
        `highWaterMark must be in [${this.maxFrameBytes}, ${MAX_BUFFERED_BYTES - this.maxFrameBytes}] ` +
          `so the send buffer stays under ${MAX_BUFFERED_BYTES} bytes, got ${this.highWater}`,
      );
    }
    if (!(this.lowWater >= 0 && this.lowWater < this.highWater)) {
      throw new RangeError(`lowWaterMark must be in [0, highWaterMark), got ${this.lowWater}`);
    }
    this.reassembler = new Reassembler({
      maxMessageBytes: options.maxMessageBytes ?? MAX_MESSAGE_BYTES,
      maxInFlight: options.maxInFlight ?? MAX_MESSAGES_IN_FLIGHT,
      maxFrameBytes: MAX_FRAME_BYTES,
    });
    this.accept = options.accept ? new Set(options.accept) : null;
    this.handler = options.onMessage;
    this.onError = options.onError ?? ((err) => console.warn(`FramedChannel: ${err.message}`));
    this.onClose = options.onClose;
    // Probe before setting: wrtc's channel has no such property, and assigning one would hide that.
    this.hasLowEvent = typeof channel.bufferedAmountLowThreshold === 'number';
    if (this.hasLowEvent) channel.bufferedAmountLowThreshold = this.lowWater;
    channel.binaryType = 'arraybuffer';
    channel.addEventListener('message', this.onFrame);
    channel.addEventListener('close', this.onChannelClose);
    channel.addEventListener('error', this.onChannelError);
    if (channel.readyState === 'closed') this.onChannelClose();
  }

  get onMessage(): ((msg: Message) => void) | undefined {
    return this.handler;
  }

  /** Setting a handler first delivers any messages that arrived while there was none. */
  set onMessage(fn: ((msg: Message) => void) | undefined) {
    this.handler = fn;
    while (fn && this.handler === fn && this.unhandled.length > 0) this.deliver(this.unhandled.shift()!);
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Same as stats.bytesSent: frame bytes handed to the data channel. */
  get bytesSent(): number {
    return this.stats.bytesSent;
  }

  /** Same as stats.bytesReceived: frame bytes received from the data channel. */
  get bytesReceived(): number {
    return this.stats.bytesReceived;
  }

  /**
   * Sends one message. Sends are serialized: a message's frames all go out before the next
   * message's. Rejects with a ProtocolError for an invalid message, or an Error if the channel closes.
   */
  send(msg: Message): Promise<void> {
    let bytes: Uint8Array;
    try {
      if (this.isClosed) throw new Error('FramedChannel is closed');
      bytes = encodeMessage(msg, {
        maxMessageBytes: this.opts.maxMessageBytes,
        updateBodyBytes: this.opts.updateBodyBytes,
      });
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    const id = this.nextMessageId;
    this.nextMessageId = (this.nextMessageId + 1) >>> 0;
    const beat = isBeat(msg.kind);
    const result = this.sendTail.then(() => this.sendFrames(id, bytes, beat));
    this.sendTail = result.catch(() => undefined);
    return result;
  }

  /** Closes the transport; pending sends reject. Idempotent. */
  close(): void {
    if (this.isClosed) return;
    this.markClosed();
    try {
      if (this.opts.close) this.opts.close();
      else this.channel.close();
    } catch (e) {
      this.onError(e as Error);
    }
  }

  private async sendFrames(id: number, bytes: Uint8Array, beat: boolean): Promise<void> {
    if (this.channel.readyState === 'connecting' && !this.isClosed) await this.opened();
    for (const frame of iterateFrames(id, bytes, this.maxFrameBytes)) {
      if (this.channel.bufferedAmount + frame.byteLength > this.highWater) await this.drain();
      this.assertOpen();
      this.channel.send(frame);
      this.stats.bytesSent += frame.byteLength;
      if (beat) this.stats.heartbeatBytesSent += frame.byteLength;
      this.stats.framesSent++;
    }
    this.stats.messagesSent++;
  }

  private assertOpen(): void {
    if (this.isClosed || this.channel.readyState !== 'open') {
      throw new Error(`data channel is ${this.isClosed ? 'closed' : this.channel.readyState}; message not sent`);
    }
  }

  /** Resolves when a still-connecting channel opens; rejects if it closes instead. */
  private opened(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const settle = () => {
        this.channel.removeEventListener('open', settle);
        this.waiters.delete(settle);
        if (this.isClosed || this.channel.readyState !== 'open') {
          reject(new Error(`data channel is ${this.isClosed ? 'closed' : this.channel.readyState}; message not sent`));
        } else resolve();
      };
      this.channel.addEventListener('open', settle);
      this.waiters.add(settle);
    });
  }

  /** Resolves once bufferedAmount is at or below the low-water mark; rejects if the channel closes. */
  private drain(): Promise<void> {
    this.assertOpen();
    return new Promise<void>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const finish = (err?: Error) => {
        clearTimeout(timer);
        this.channel.removeEventListener('bufferedamountlow', check);
        this.waiters.delete(check);
        if (err) reject(err);
        else resolve();
      };
      const check = () => {
        clearTimeout(timer);
        if (this.isClosed || this.channel.readyState !== 'open') {
          finish(new Error('data channel closed while waiting for its send buffer to drain'));
        } else if (this.channel.bufferedAmount <= this.lowWater) {
          finish();
        } else {
          timer = setTimeout(check, this.hasLowEvent ? EVENT_FALLBACK_POLL_MS : this.pollMs);
        }
      };
      if (this.hasLowEvent) this.channel.addEventListener('bufferedamountlow', check);
      this.waiters.add(check);
      timer = setTimeout(check, this.hasLowEvent ? EVENT_FALLBACK_POLL_MS : this.pollMs);
    });
  }

  private readonly onFrame = (event: { data?: unknown }): void => {
    const data = event.data;
    let frame: Uint8Array;
    if (data instanceof ArrayBuffer) frame = new Uint8Array(data);
    else if (ArrayBuffer.isView(data)) frame = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    else {
      this.stats.framesReceived++;
      this.stats.rejectedFrames++;
      const what =
        typeof data === 'string' ? `a text message of ${data.length} characters` : `a ${typeof data} message`;
      this.onError(new ProtocolError(`received ${what}; this channel carries binary frames only`));
      return;
    }
    this.stats.framesReceived++;
    this.stats.bytesReceived += frame.byteLength;
    let whole: Uint8Array | null;
    try {
      whole = this.reassembler.push(frame);
    } catch (e) {
      this.stats.rejectedFrames++;
      this.report(e);
      return;
    } finally {
      // Frames of an already-refused message are dropped quietly by the reassembler; count them.
      this.stats.rejectedFrames += this.reassembler.discardedFrames - this.discardedSeen;
      this.discardedSeen = this.reassembler.discardedFrames;
    }
    if (!whole) return;
    let msg: Message;
    try {
      msg = decodeMessage(whole, {
        maxMessageBytes: this.opts.maxMessageBytes,
        updateBodyBytes: this.opts.updateBodyBytes,
      });
      if (this.accept && !this.accept.has(msg.kind)) {
        throw new ProtocolError(
          `message kind "${msg.kind}" is not accepted here (accepted: ${[...this.accept].join(', ')})`,
        );
      }
    } catch (e) {
      this.stats.rejectedMessages++;
      this.report(e);
      return;
    }
    this.stats.messagesReceived++;
    // A beat is one frame (an empty header): its frame bytes are the message plus one frame header.
    if (isBeat(msg.kind)) this.stats.heartbeatBytesReceived += whole.byteLength + FRAME_HEADER_BYTES;
    if (this.handler) this.deliver(msg);
    else if (this.unhandled.length < MAX_UNHANDLED) this.unhandled.push(msg);
    else
      this.onError(
        new ProtocolError(
          `dropped a ${msg.kind} message: ${MAX_UNHANDLED} messages already wait for an onMessage handler`,
        ),
      );
  };

  private deliver(msg: Message): void {
    try {
      this.handler!(msg);
    } catch (e) {
      // A throwing handler must not become an uncaught exception inside a channel event.
      this.onError(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private report(e: unknown): void {
    this.onError(e instanceof Error ? e : new Error(String(e)));
  }

  private readonly onChannelClose = (): void => {
    if (!this.isClosed) this.markClosed();
  };

  private readonly onChannelError = (event: { error?: unknown; message?: string }): void => {
    const err =
      event.error instanceof Error ? event.error : new Error(`data channel error: ${event.message ?? 'unknown'}`);
    this.onError(err);
  };

  private markClosed(): void {
    this.isClosed = true;
    this.channel.removeEventListener('message', this.onFrame);
    this.channel.removeEventListener('close', this.onChannelClose);
    this.channel.removeEventListener('error', this.onChannelError);
    for (const wake of [...this.waiters]) wake();
    try {
      this.onClose?.();
    } catch (e) {
      this.onError(e as Error);
    }
  }
}
