import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../util/rng';
import { evalSequences, evalWindows, sampleBatch, sampleSequences, shardRange, splitTokens } from './split';

function ramp(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => i);
}

test('split takes a contiguous tail of at least context+1 tokens as validation', () => {
  const t = ramp(1000);
  const { train, val } = splitTokens(t, 0.1, 8);
  assert.equal(train.length + val.length, t.length);
  assert.equal(val.length, Math.round(t.length * 0.1));
  assert.equal(val[0], train[train.length - 1] + 1, 'validation continues where training ends');
  // A tiny fraction is raised to one full window.
  const small = splitTokens(ramp(40), 0.01, 8);
  assert.equal(small.val.length, 9);
  assert.equal(small.train.length, 31);
  // Deterministic.
  assert.deepEqual(splitTokens(t, 0.1, 8), splitTokens(t, 0.1, 8));
});

test('split edges: exactly enough tokens works, one fewer fails clearly', () => {
  const k = 4;
  const ok = splitTokens(ramp(2 * (k + 1)), 0.5, k);
  assert.equal(ok.train.length, k + 1);
  assert.equal(ok.val.length, k + 1);
  assert.throws(() => splitTokens(ramp(2 * (k + 1) - 1), 0.5, k), /corpus too small: 9 tokens, need at least 10/);
  assert.throws(() => splitTokens(ramp(100), 0, k), /valFraction must be a number in \(0, 1\), got 0/);
  assert.throws(() => splitTokens(ramp(100), 1, k), /valFraction/);
  assert.throws(() => splitTokens(ramp(100), 0.1, 0), /context must be an integer >= 1, got 0/);
});

test('shards are contiguous, disjoint, cover [0, n) and differ in size by at most one', () => {
  for (const [n, c] of [
    [10, 3],
    [1000, 8],
    [7, 7],
    [5, 1],
    [1_000_003, 64],
  ]) {
    let prev = 0;
    const sizes: number[] = [];
    for (let i = 0; i < c; i++) {
      const [s, e] = shardRange(n, i, c);
      assert.equal(s, prev, `shard ${i} of ${c} starts where the previous ended`);
      assert.ok(e > s);
      sizes.push(e - s);
      prev = e;
    }
    assert.equal(prev, n);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1);
  }
});

test('shardRange rejects bad indices and counts', () => {
  assert.throws(() => shardRange(10, 3, 3), /shardIndex must be an integer in \[0, 2\], got 3/);
  assert.throws(() => shardRange(10, -1, 3), /shardIndex/);
  assert.throws(() => shardRange(10, 0.5, 3), /shardIndex/);
  assert.throws(() => shardRange(10, 0, 0), /shardCount must be an integer in \[1, 10\], got 0/);
  assert.throws(() => shardRange(10, 0, 11), /shardCount must be an integer in \[1, 10\], got 11/);
  assert.throws(() => shardRange(0, 0, 1), /nTrain must be an integer >= 1/);
});

test('sampleBatch rows are consecutive tokens and targets are the next token', () => {
  // Random tokens so that a window's content identifies its position only through the stream.
  const rng = new Rng(7);
  const tokens = Int32Array.from({ length: 500 }, () => rng.int(1000));
  const k = 5;
  const b = sampleBatch(tokens, k, 64, new Rng(3));
  assert.equal(b.tokens.length, 64 * k);
  assert.equal(b.targets.length, 64);
  const text = Array.from(tokens).join(',');
  const starts = new Set<number>();
  for (let r = 0; r < 64; r++) {
    const window = [...b.tokens.subarray(r * k, r * k + k), b.targets[r]];
    assert.ok(text.includes(window.join(',')), `row ${r} plus target is a contiguous piece of the stream`);
    starts.add(b.tokens[r * k]);
  }
  assert.ok(starts.size > 32, 'windows are spread over the stream');
  // Same seed, same batch.
  assert.deepEqual(sampleBatch(tokens, k, 64, new Rng(3)), b);
});

test('sampleBatch reaches the last window and never runs past the end', () => {
  const tokens = ramp(6);
  const k = 4; // two possible windows: starts 0 and 1
  const b = sampleBatch(tokens, k, 200, new Rng(1));
  const starts = new Set<number>();
  for (let r = 0; r < 200; r++) {
    starts.add(b.tokens[r * k]);
    assert.equal(b.targets[r], b.tokens[r * k] + k);
  }
  assert.deepEqual([...starts].sort(), [0, 1]);
  assert.throws(() => sampleBatch(ramp(4), 4, 1, new Rng(1)), /only 4 tokens, need 5/);
  assert.throws(() => sampleBatch(tokens, 4, 0, new Rng(1)), /batch must be an integer >= 1, got 0/);
});

test('evalWindows are evenly spaced, deterministic and capped', () => {
  const tokens = ramp(1001);
  const k = 8;
  const w = evalWindows(tokens, k, 100);
  assert.equal(w.targets.length, 100);
  const starts = Array.from({ length: 100 }, (_, i) => w.tokens[i * k]);
  for (let i = 0; i < 100; i++) assert.equal(w.targets[i], starts[i] + k);
  const gaps = starts.slice(1).map((s, i) => s - starts[i]);
  assert.ok(Math.max(...gaps) - Math.min(...gaps) <= 1, 'even spacing');
  assert.equal(starts[0], 0);
  assert.ok(starts[99] + k < tokens.length);
  assert.deepEqual(evalWindows(tokens, k, 100), w);
  // Fewer windows than asked: every position once.
  const all = evalWindows(ramp(12), 4, 1000);
  assert.deepEqual(
    Array.from(all.targets),
    Array.from({ length: 12 - 4 }, (_, s) => s + 4),
  );
  assert.throws(() => evalWindows(ramp(3), 4, 10), /only 3 tokens, need 5/);
  assert.throws(() => evalWindows(tokens, 4, 0), /maxExamples/);
});

test('sampleSequences: each row is a piece of the stream and its targets are the same piece shifted by one', () => {
  const rng = new Rng(11);
  const tokens = Int32Array.from({ length: 300 }, () => rng.int(1000));
  const T = 6;
  const B = 40;
  const b = sampleSequences(tokens, T, B, new Rng(5));
  assert.equal(b.tokens.length, B * T);
  assert.equal(b.targets.length, B * T);
  const text = Array.from(tokens).join(',');
  for (let r = 0; r < B; r++) {
    const row = b.tokens.subarray(r * T, (r + 1) * T);
    const tgt = b.targets.subarray(r * T, (r + 1) * T);
    assert.ok(
      text.includes([...row, tgt[T - 1]].join(',')),
      `row ${r} plus its last target is contiguous in the stream`,
    );
    for (let t = 0; t + 1 < T; t++) assert.equal(tgt[t], row[t + 1], `row ${r}: targets[${t}] is the next token`);
  }
  assert.deepEqual(sampleSequences(tokens, T, B, new Rng(5)), b, 'same seed, same batch');
  // Exactly context + 1 tokens: the one possible window.
  const one = sampleSequences(ramp(5), 4, 3, new Rng(1));
  assert.deepEqual(Array.from(one.tokens), [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]);
  assert.deepEqual(Array.from(one.targets), [1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4]);
  assert.throws(() => sampleSequences(ramp(4), 4, 1, new Rng(1)), /only 4 tokens, need 5/);
  assert.throws(() => sampleSequences(tokens, 4, 0, new Rng(1)), /batch must be an integer >= 1, got 0/);
});

test('evalSequences are evenly spaced, shifted by one, deterministic, and do not overlap when the stream is long enough', () => {
  const T = 8;
  const e = evalSequences(ramp(10 * T + 1), T, 10);
  assert.equal(e.tokens.length, 10 * T);
  for (let i = 0; i < 10 * T; i++) {
    assert.equal(e.tokens[i], i, 'ten back-to-back sequences cover the stream');
    assert.equal(e.targets[i], i + 1);
  }
  assert.deepEqual(evalSequences(ramp(10 * T + 1), T, 10), e);
  // Fewer positions than asked: every start once.
  const all = evalSequences(ramp(7), 4, 100);
  assert.equal(all.tokens.length, 3 * 4);
  assert.deepEqual(Array.from(all.tokens.filter((_, i) => i % 4 === 0)), [0, 1, 2]);
  assert.throws(() => evalSequences(ramp(3), 4, 10), /only 3 tokens, need 5/);
  assert.throws(() => evalSequences(ramp(30), 4, 0), /maxSequences must be an integer >= 1, got 0/);
});
