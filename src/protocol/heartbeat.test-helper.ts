// A manual clock for heartbeat tests: time moves only when the test advances it.
import type { HeartbeatClock } from './heartbeat';

export class FakeClock implements HeartbeatClock {
  private t = 0;
  private timers = new Set<{ ms: number; next: number; fn: () => void }>();

  now(): number {
    return this.t;
  }

  every(ms: number, fn: () => void): () => void {
    const timer = { ms, next: this.t + ms, fn };
    this.timers.add(timer);
    return () => this.timers.delete(timer);
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in time order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let due: { ms: number; next: number; fn: () => void } | null = null;
      for (const x of this.timers) if (x.next <= end && (!due || x.next < due.next)) due = x;
      if (!due) break;
      this.t = due.next;
      due.next += due.ms;
      due.fn();
    }
    this.t = end;
  }

  get activeTimers(): number {
    return this.timers.size;
  }
}

/** One event-loop turn, so an in-memory channel delivers what was sent (not a timing wait). */
export const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
