// The coordinator's outer optimizer over the donors' pseudo-gradients (DiLoCo, Douillard et al.
// 2023): g = mean of the donors' Δ = θ_v − θ_local after H local steps; with momentum μ > 0 it is
// SGD with Nesterov momentum as in PyTorch (buf ← μ·buf + g; step = lr·(g + μ·buf)), with μ = 0
// plain averaging scaled by lr (lr 1, μ 0 at H = 1 is synchronous data parallelism).

export interface OuterConfig {
  /** Outer learning rate (DiLoCo: 0.7). */
  lr: number;
  /** Nesterov momentum (DiLoCo: 0.9); 0 = none. */
  momentum: number;
}

/**
 * The outer optimizer a job gets unless it says otherwise: plain averaging at H = 1 (synchronous data
 * parallel); at H > 1 DiLoCo's outer lr 0.7 with Nesterov 0.9, except for sparsifying codecs (top-k,
 * random-k, chunked top-1, CocktailSGD), which get lr 1 without momentum: there the donors' error feedback already
 * carries the unsent part of every pseudo-gradient forward, as SparseLoCo (Sarfi et al. 2025) does, and
 * Nesterov on top of it overshot in our runs (docs/COMPRESSION.md, bench/results/compression-quick.json).
 */
export function defaultOuter(localSteps: number, codec = 'f32'): OuterConfig {
  if (localSteps <= 1) return { lr: 1, momentum: 0 };
  return /^(topk|randomk|chunktop|cocktail)\b/.test(codec) ? { lr: 1, momentum: 0 } : { lr: 0.7, momentum: 0.9 };
}

export function checkOuter(c: OuterConfig): void {
  if (!(Number.isFinite(c.lr) && c.lr > 0 && c.lr <= 10))
    throw new RangeError(`outer lr must be in (0, 10], got ${c.lr}`);
  if (!(Number.isFinite(c.momentum) && c.momentum >= 0 && c.momentum < 1)) {
    throw new RangeError(`outer momentum must be in [0, 1), got ${c.momentum}`);
  }
}

export class OuterOptimizer {
  private buf: Float32Array | null = null;

  constructor(
    readonly cfg: OuterConfig,
    readonly n: number,
  ) {
    checkOuter(cfg);
  }

  /** The step s for the mean pseudo-gradient g: the new weights are θ − s. */
  step(g: Float32Array): Float32Array {
    if (g.length !== this.n) throw new RangeError(`outer step: expected ${this.n} values, got ${g.length}`);
    const { lr, momentum: mu } = this.cfg;
    const s = new Float32Array(this.n);
    if (mu === 0) {
      for (let i = 0; i < this.n; i++) s[i] = lr * g[i];
      return s;
    }
    const b = (this.buf ??= new Float32Array(this.n));
    for (let i = 0; i < this.n; i++) {
      b[i] = mu * b[i] + g[i];
      s[i] = lr * (g[i] + mu * b[i]);
    }
    return s;
  }

  /** Forgets the momentum. */
  reset(): void {
    this.buf = null;
  }

  /** The momentum buffer (null before the first step, or without momentum), for a checkpoint. */
  get momentum(): Float32Array | null {
    return this.buf;
  }

  /** Resumes with a checkpointed momentum buffer (copied); null forgets it. */
  restore(buf: Float32Array | null): void {
    if (buf && buf.length !== this.n)
      throw new RangeError(`outer momentum: expected ${this.n} values, got ${buf.length}`);
    this.buf = buf ? Float32Array.from(buf) : null;
  }
}
