// Learning-rate schedule: linear warmup to the base rate, then cosine decay to base·minRatio at
// `total` steps (and held there after). The shape nanoGPT and most small-LM recipes use.
export interface LrSchedule {
  base: number;
  warmup: number;
  total: number;
  /** Final rate as a fraction of base, in [0, 1]. */
  minRatio: number;
}

export function validateSchedule(s: LrSchedule): void {
  if (!(s.base > 0 && Number.isFinite(s.base)))
    throw new RangeError(`schedule.base must be a finite number > 0, got ${s.base}`);
  if (!Number.isInteger(s.warmup) || s.warmup < 0)
    throw new RangeError(`schedule.warmup must be an integer ≥ 0, got ${s.warmup}`);
  if (!Number.isInteger(s.total) || s.total < Math.max(1, s.warmup)) {
    throw new RangeError(`schedule.total must be an integer ≥ max(1, warmup=${s.warmup}), got ${s.total}`);
  }
  if (!(s.minRatio >= 0 && s.minRatio <= 1))
    throw new RangeError(`schedule.minRatio must be in [0, 1], got ${s.minRatio}`);
}

/** Learning rate for 0-based `step`. */
export function lrAt(step: number, s: LrSchedule): number {
  if (step < s.warmup) return (s.base * (step + 1)) / s.warmup;
  if (step >= s.total) return s.base * s.minRatio;
  const span = s.total - s.warmup;
  const progress = span === 0 ? 1 : (step - s.warmup) / span;
  const cosine = 0.5 * (1 + Math.cos(Math.PI * progress));
  return s.base * (s.minRatio + (1 - s.minRatio) * cosine);
}
