// AdamW hyperparameters and the per-step constants shared by the CPU reference and the GPU kernel.

export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export function validateAdamW(hp: AdamWHyper): void {
  const bad = (k: string, v: number, want: string) => new RangeError(`AdamW ${k} must be ${want}, got ${v}`);
  if (!(Number.isFinite(hp.lr) && hp.lr >= 0)) throw bad('lr', hp.lr, 'a finite number >= 0');
  if (!(hp.beta1 >= 0 && hp.beta1 < 1)) throw bad('beta1', hp.beta1, 'in [0, 1)');
  if (!(hp.beta2 >= 0 && hp.beta2 < 1)) throw bad('beta2', hp.beta2, 'in [0, 1)');
  if (!(Number.isFinite(hp.eps) && hp.eps > 0)) throw bad('eps', hp.eps, 'a finite number > 0');
  if (!(Number.isFinite(hp.weightDecay) && hp.weightDecay >= 0))
    throw bad('weightDecay', hp.weightDecay, 'a finite number >= 0');
}

/** PyTorch's folded bias corrections for 1-based step t: step_size = lr/(1−β1^t), sqrt_bc2 = sqrt(1−β2^t). */
export function adamwStepConstants(hp: AdamWHyper, t: number): { stepSize: number; sqrtBc2: number } {
  if (!Number.isInteger(t) || t < 1) throw new RangeError(`AdamW step count must be an integer >= 1, got ${t}`);
  return { stepSize: hp.lr / (1 - Math.pow(hp.beta1, t)), sqrtBc2: Math.sqrt(1 - Math.pow(hp.beta2, t)) };
}
