import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff } from './backoff';

test('delays double from 0.5 s to the 10 s cap, and reset starts over', () => {
  const b = new Backoff({ random: () => 0.5 }); // no spread
  assert.deepEqual(
    Array.from({ length: 8 }, () => b.next()),
    [500, 1000, 2000, 4000, 8000, 10000, 10000, 10000],
  );
  b.reset();
  assert.equal(b.next(), 500);
});

test('jitter spreads each delay by ±30 % and stays inside it', () => {
  assert.equal(new Backoff({ random: () => 0 }).next(), 350);
  assert.equal(new Backoff({ random: () => 0.999999 }).next(), 650);
  const b = new Backoff();
  for (let i = 0; i < 200; i++) {
    const base = Math.min(10_000, 500 * 2 ** Math.min(i, 10));
    const d = b.next();
    assert.ok(d >= 0.7 * base - 1 && d <= 1.3 * base + 1, `try ${i}: ${d} for ${base}`);
  }
});

test('bad settings are refused', () => {
  assert.throws(() => new Backoff({ initialMs: 0 }), /0 < initialMs/);
  assert.throws(() => new Backoff({ jitter: 1 }), /jitter must be in \[0, 1\), got 1/);
});
