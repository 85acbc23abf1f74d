// Reconnect delays: exponential with a cap, each spread by ±jitter so a fleet whose coordinator
// restarted does not come back in one burst.

export interface BackoffOptions {
  /** First delay; default 500 ms. */
  initialMs?: number;
  /** Largest delay before jitter; default 10 s. */
  maxMs?: number;
  /** Growth per failed try; default 2. */
  factor?: number;
  /** Relative spread, 0..1: a delay d becomes d × (1 ± jitter); default 0.3. */
  jitter?: number;
  /** For tests; default Math.random. */
  random?: () => number;
}

export class Backoff {
  private tries = 0;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly factor: number;
  private readonly jitter: number;
  private readonly random: () => number;

  constructor(o: BackoffOptions = {}) {
    this.initialMs = o.initialMs ?? 500;
    this.maxMs = o.maxMs ?? 10_000;
    this.factor = o.factor ?? 2;
    this.jitter = o.jitter ?? 0.3;
    this.random = o.random ?? Math.random;
    if (!(this.initialMs > 0 && this.maxMs >= this.initialMs && this.factor >= 1)) {
      throw new RangeError(`backoff needs 0 < initialMs ≤ maxMs and factor ≥ 1, got ${JSON.stringify(o)}`);
    }
    if (!(this.jitter >= 0 && this.jitter < 1))
      throw new RangeError(`backoff jitter must be in [0, 1), got ${o.jitter}`);
  }

  /** The delay before the next try; each call grows the next one. */
  next(): number {
    const base = Math.min(this.maxMs, this.initialMs * this.factor ** this.tries);
    this.tries++;
    return Math.round(base * (1 + this.jitter * (2 * this.random() - 1)));
  }

  /** After a success: the next failure starts from the first delay again. */
  reset(): void {
    this.tries = 0;
  }
}
