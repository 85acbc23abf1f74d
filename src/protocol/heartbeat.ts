// Liveness both ways on one data channel. A WebRTC data channel whose far process died (kill -9, a
// closed laptop) may never fire `close`, so each side sends a beat every `intervalMs` and treats the
// other as gone after `timeoutMs` without a single frame from it. Any frame counts, so a long weights
// transfer (whose frames hold beats back in the serialized send queue) keeps the link alive.
import type { ChannelStats } from './channel';
import type { Message } from './messages';

/** Default period of the beats each side sends. */
export const DEFAULT_HEARTBEAT_MS = 2000;
/** Default silence after which the other side counts as gone (several beats, and a slow round's CPU work). */
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 8000;
export const MIN_HEARTBEAT_MS = 10;
export const MAX_HEARTBEAT_TIMEOUT_MS = 600_000;

export interface HeartbeatSettings {
  intervalMs: number;
  timeoutMs: number;
}

/** Time and timers, injectable so tests run on a fake clock. */
export interface HeartbeatClock {
  now(): number;
  /** Calls `fn` every `ms`; returns the function that stops it. */
  every(ms: number, fn: () => void): () => void;
}

export const realClock: HeartbeatClock = {
  now: () => Date.now(),
  every(ms, fn) {
    const t = setInterval(fn, ms);
    return () => clearInterval(t);
  },
};

/** What a heartbeat needs of a FramedChannel. */
export interface BeatChannel {
  readonly closed: boolean;
  readonly stats: Pick<ChannelStats, 'framesReceived'>;
  send(msg: Message): Promise<void>;
}

/** Fills in the defaults and checks the ranges; throws a RangeError naming the bad value. */
export function heartbeatSettings(s: Partial<HeartbeatSettings> = {}): HeartbeatSettings {
  const intervalMs = s.intervalMs ?? DEFAULT_HEARTBEAT_MS;
  const timeoutMs = s.timeoutMs ?? Math.max(DEFAULT_HEARTBEAT_TIMEOUT_MS, 3 * intervalMs);
  if (!Number.isInteger(intervalMs) || intervalMs < MIN_HEARTBEAT_MS) {
    throw new RangeError(`heartbeat interval must be an integer ≥ ${MIN_HEARTBEAT_MS} ms, got ${intervalMs}`);
  }
  if (!Number.isInteger(timeoutMs) || timeoutMs < 2 * intervalMs || timeoutMs > MAX_HEARTBEAT_TIMEOUT_MS) {
    throw new RangeError(
      `heartbeat timeout must be an integer in [2 × interval = ${2 * intervalMs}, ${MAX_HEARTBEAT_TIMEOUT_MS}] ms, ` +
        `got ${timeoutMs}`,
    );
  }
  return { intervalMs, timeoutMs };
}

export interface Heartbeat {
  /** Milliseconds since the last frame from the other side. */
  silentMs(): number;
  stop(): void;
}

/**
 * Sends `kind` on `ch` every intervalMs and calls `onSilent` once, then stops, when no frame has
 * arrived for timeoutMs. The caller decides what gone means (close, detach, reconnect). It checks every
 * quarter of min(interval, timeout / 4), so silence is noticed at most timeout / 16 late.
 */
export function startHeartbeat(
  ch: BeatChannel,
  kind: 'ping' | 'pong',
  onSilent: (silentMs: number) => void,
  settings: Partial<HeartbeatSettings> = {},
  clock: HeartbeatClock = realClock,
): Heartbeat {
  const { intervalMs, timeoutMs } = heartbeatSettings(settings);
  let lastHeard = clock.now();
  let lastFrames = ch.stats.framesReceived;
  let lastSent = -Infinity;
  let sending = false;
  let stopped = false;
  const tick = () => {
    if (stopped) return;
    if (ch.closed) return stop();
    const now = clock.now();
    if (ch.stats.framesReceived !== lastFrames) {
      lastFrames = ch.stats.framesReceived;
      lastHeard = now;
    }
    if (now - lastHeard >= timeoutMs) {
      stop();
      onSilent(now - lastHeard);
      return;
    }
    // One beat in the queue at a time: behind a large message it would only pile up.
    if (!sending && now - lastSent >= intervalMs) {
      lastSent = now;
      sending = true;
      ch.send({ kind, header: {} }).then(
        () => (sending = false),
        () => (sending = false), // a closed channel: the next tick stops
      );
    }
  };
  const cancel = clock.every(Math.max(1, Math.floor(Math.min(intervalMs, timeoutMs / 4) / 4)), tick);
  function stop() {
    stopped = true;
    cancel();
  }
  tick();
  return { silentMs: () => clock.now() - lastHeard, stop };
}
