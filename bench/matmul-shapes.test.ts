// The GPT-shapes list of the matmul bench (bench/matmul-shapes.ts): the products one training step of
// src/model/gpt-gpu.ts runs, merged by shape with counts, and the per-step totals. Pure: no GPU.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WEBGPU_DEFAULT_LIMITS } from '../src/gpu/kernels/matmul';
import {
  GPT_SHAPES_DEFAULT,
  describeGptShape,
  gptShapes,
  legacyChoice,
  stepTotals,
  type GptShapeRow,
} from './matmul-shapes';

test('gpt-shapes lists every product of a step: 12 per block and 3 for the head at full rank, 24 per block at low rank', () => {
  const full = gptShapes();
  assert.equal(
    full.reduce((n, g) => n + g.count, 0),
    2 * 12 + 3,
  );
  const fwd = full.find((g) => describeGptShape(g.shape) === '1024×192×64 Bᵀ');
  assert.deepEqual(fwd && { count: fwd.count, label: fwd.label }, { count: 2, label: 'c_attn fwd' });
  // attn.c_proj's input gradient (1024×64×64) and weight gradient (64×64×1024) are each their own shape.
  assert.ok(full.some((g) => describeGptShape(g.shape) === '64×64×1024 Aᵀ'));
  const low = gptShapes({ ...GPT_SHAPES_DEFAULT, rank: 16 });
  assert.equal(
    low.reduce((n, g) => n + g.count, 0),
    2 * 24 + 3,
  );
  // Shared shapes merge: h = inp·V is 1024×16×64 for c_attn, attn.c_proj and c_fc, and dh of attn.c_proj and
  // mlp.c_proj.
  const h = low.find((g) => describeGptShape(g.shape) === '1024×16×64');
  assert.equal(h?.count, 10);
  assert.match(h?.label ?? '', /c_attn fwd h, attn\.c_proj fwd h, attn\.c_proj dh, c_fc fwd h, mlp\.c_proj dh/);
});

test('gpt-shapes totals weight each shape by its count; "before" and "single" fall back to the configuration they equal', () => {
  const row = (count: number, ms: Record<string, number>): GptShapeRow => ({
    label: '',
    shape: '',
    count,
    plan: '',
    before: '',
    ms,
    cpuMs: ms,
    check: {},
  });
  const rows = [row(2, { chosen: 1, simple: 10, before: 5 }), row(3, { chosen: 2, single: 3, simple: 4 })];
  assert.deepEqual(stepTotals(rows), { before: 2 * 5 + 3 * 4, chosen: 2 + 6, simple: 20 + 12, single: 2 * 1 + 3 * 3 });
  // The selector before the direct variants: tuned for aligned wide products, simple for small ones.
  assert.equal(legacyChoice(WEBGPU_DEFAULT_LIMITS, { M: 1024, N: 192, K: 64, transB: true }), 'tuned');
  assert.equal(legacyChoice(WEBGPU_DEFAULT_LIMITS, { M: 64, N: 64, K: 1024, transA: true }), 'simple');
});
