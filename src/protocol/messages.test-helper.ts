// Test helpers, not used by production code: valid sample messages (one of every kind, bodies of fresh
// random bytes rather than zeros) and an in-memory data channel with a send buffer.
import { Rng } from '../util/rng';
import type { DataChannelLike } from './channel';
import type { MessageKind, MessageOf } from './messages';
import { withDefaults } from '../schema/check';
import { JobTrain } from '../schema/job';

export function randomBytes(rng: Rng, n: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.nextU32() & 0xff;
  return out;
}

/** One valid message of each kind; `weightsN` sets the parameter count of the weights message. */
export function sampleMessages(seed = 1, weightsN = 257): { [K in MessageKind]: MessageOf<K> } {
  const rng = new Rng(seed);
  const vocab = Array.from('abcdefghijklmnopqrstuvwxyz .,;!?\n');
  const updateN = 1 + rng.int(1000);
  return {
    hello: {
      kind: 'hello',
      header: {
        donorId: `donor_${rng.nextU32()}`,
        adapter: 'SwiftShader (Google)',
        userAgent: 'Mozilla/5.0 test',
        protocol: 1,
      },
    },
    ready: { kind: 'ready', header: { jobId: 'job-1', version: -1 } },
    update: {
      kind: 'update',
      header: {
        jobId: 'job-1',
        round: rng.int(100),
        baseVersion: rng.int(100),
        steps: 1 + rng.int(50),
        loss: 4 * rng.next(),
        tokens: rng.int(1e6),
        codec: 'int8',
        n: updateN,
        computeMs: 1000 * rng.next(),
      },
      body: randomBytes(rng, updateN + 8),
    },
    status: { kind: 'status', header: { state: 'training', detail: 'step 3 of 10' } },
    ping: { kind: 'ping', header: {} },
    pong: { kind: 'pong', header: {} },
    job: {
      kind: 'job',
      header: {
        jobId: 'job-1',
        name: 'tiny shakespeare mlp',
        model: { type: 'mlp', vocab: vocab.length, context: 3, embed: 8, hidden: 16 },
        vocab,
        // A parsed train section: the schema's defaults plus what the spec would have filled in.
        train: withDefaults<JobTrain>(JobTrain, {
          batch: 32,
          weightDecay: 0.01,
          gradClip: 0,
          seed: rng.nextU32(),
          outerLr: 1,
          outerMomentum: 0,
          codec: 'topk:0.01/q2',
          downCodec: 'q4',
        }),
      },
    },
    weights: {
      kind: 'weights',
      header: { jobId: 'job-1', version: rng.int(100), n: weightsN, encoding: 'f32' },
      body: randomBytes(rng, weightsN * 4),
    },
    assign: {
      kind: 'assign',
      header: { jobId: 'job-1', round: 3, version: 7, shard: 2, steps: 10, seed: rng.nextU32(), deadlineMs: 30000 },
      body: randomBytes(rng, 12 + weightsN), // the broadcast step v6 → v7
    },
    idle: { kind: 'idle', header: { reason: 'no job is running' } },
    error: { kind: 'error', header: { message: 'update for an unknown round' } },
  };
}

// One event-loop turn: setImmediate in Node, a zero timeout elsewhere.
const nextTurn: (fn: () => void) => void =
  typeof setImmediate === 'function' ? (fn) => setImmediate(fn) : (fn) => setTimeout(fn, 0);

type Listener = (event: { data?: unknown }) => void;

/**
 * An in-memory data channel. What is sent sits in a buffer (counted in bufferedAmount) until the
 * "network" moves it to the peer, `drainPerTick` bytes per event-loop turn; like a browser channel it
 * fires `bufferedamountlow` when bufferedAmount falls to the threshold, or (lowEvent false) behaves like
 * @roamhq/wrtc, which has no threshold and no such event.
 */
export class FakeChannel implements DataChannelLike {
  readyState = 'open';
  bufferedAmount = 0;
  bufferedAmountLowThreshold?: number;
  binaryType = 'blob';
  peer!: FakeChannel;
  /** Largest bufferedAmount ever seen right after a send. */
  maxBuffered = 0;
  /** Every frame sent, in order. */
  readonly log: Uint8Array[] = [];
  paused = false;
  private queue: Uint8Array[] = [];
  private scheduled = false;
  private readonly listeners = new Map<string, Set<Listener>>();

  constructor(
    private readonly lowEvent: boolean,
    private readonly drainPerTick: number,
  ) {
    if (lowEvent) this.bufferedAmountLowThreshold = 0;
  }

  static pair(lowEvent = true, drainPerTick = 64 * 1024): [FakeChannel, FakeChannel] {
    const a = new FakeChannel(lowEvent, drainPerTick);
    const b = new FakeChannel(lowEvent, drainPerTick);
    a.peer = b;
    b.peer = a;
    return [a, b];
  }

  send(data: Uint8Array<ArrayBuffer>): void {
    this.sendRaw(data.slice());
  }

  /** Puts anything on the wire, as a misbehaving peer could. */
  sendRaw(data: Uint8Array | string): void {
    if (this.readyState !== 'open') throw new Error(`InvalidStateError: channel is ${this.readyState}`);
    const size = typeof data === 'string' ? data.length : data.byteLength;
    if (typeof data !== 'string') this.log.push(data);
    this.queue.push(data as Uint8Array);
    this.bufferedAmount += size;
    this.maxBuffered = Math.max(this.maxBuffered, this.bufferedAmount);
    if (this.bufferedWaiter && this.bufferedAmount >= this.bufferedWaiter.min) this.bufferedWaiter.resolve();
    this.schedule();
  }

  private bufferedWaiter: { min: number; resolve: () => void } | null = null;

  /** Resolves once a send has brought bufferedAmount to at least `min`. */
  whenBuffered(min: number): Promise<void> {
    return new Promise((resolve) => (this.bufferedWaiter = { min, resolve }));
  }

  /** Resolves once `n` more messages have been delivered to this side's listeners. */
  whenDelivered(n: number): Promise<void> {
    return new Promise((resolve) => {
      let seen = 0;
      const l = () => {
        if (++seen === n) {
          this.removeEventListener('message', l);
          resolve();
        }
      };
      this.addEventListener('message', l);
    });
  }

  resume(): void {
    this.paused = false;
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.paused) return;
    this.scheduled = true;
    nextTurn(() => this.pump());
  }

  private pump(): void {
    this.scheduled = false;
    if (this.paused || this.readyState !== 'open') return;
    let budget = this.drainPerTick;
    while (this.queue.length > 0 && budget > 0) {
      const item = this.queue.shift()!;
      const size = typeof item === 'string' ? (item as string).length : item.byteLength;
      budget -= size;
      const before = this.bufferedAmount;
      this.bufferedAmount -= size;
      // Receivers get a fresh ArrayBuffer, as from a real channel with binaryType 'arraybuffer'.
      this.peer.emit('message', { data: typeof item === 'string' ? item : item.slice().buffer });
      const threshold = this.bufferedAmountLowThreshold ?? 0;
      if (this.lowEvent && before > threshold && this.bufferedAmount <= threshold) this.emit('bufferedamountlow', {});
    }
    if (this.queue.length > 0) this.schedule();
  }

  close(): void {
    if (this.readyState === 'closed') return;
    this.readyState = 'closed';
    this.queue = [];
    this.bufferedAmount = 0;
    this.emit('close', {});
    this.peer.close();
  }

  addEventListener(type: string, listener: Listener): void {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type)!.add(listener);
  }

  removeEventListener(type: string, listener: Listener): void {
    this.listeners.get(type)?.delete(listener);
  }

  listenerCount(type: string): number {
    return this.listeners.get(type)?.size ?? 0;
  }

  private emit(type: string, event: { data?: unknown }): void {
    for (const l of [...(this.listeners.get(type) ?? [])]) l(event);
  }
}
