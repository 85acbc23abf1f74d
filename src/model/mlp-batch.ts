// Validation of a batch for the MLP language model, shared by the CPU reference and the GPU trainer.
import type { MlpConfig } from './mlp-spec';

/** Checks shapes and token ranges; returns the number of examples. */
export function checkMlpBatch(cfg: MlpConfig, tokens: Int32Array, targets: Int32Array, batch?: number): number {
  const n = targets.length;
  if (batch !== undefined && n !== batch) throw new RangeError(`expected ${batch} targets (the batch size), got ${n}`);
  if (n === 0) throw new RangeError('a batch needs at least one example, got 0 targets');
  if (tokens.length !== n * cfg.context) {
    throw new RangeError(
      `expected ${n * cfg.context} tokens (${n} examples × context ${cfg.context}), got ${tokens.length}`,
    );
  }
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (!(t >= 0 && t < cfg.vocab))
      throw new RangeError(`tokens[${i}] = ${t} is outside the vocabulary [0, ${cfg.vocab})`);
  }
  for (let i = 0; i < n; i++) {
    const t = targets[i];
    if (!(t >= 0 && t < cfg.vocab))
      throw new RangeError(`targets[${i}] = ${t} is outside the vocabulary [0, ${cfg.vocab})`);
  }
  return n;
}
