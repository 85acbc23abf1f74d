import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aggregate, aggregatorName, l2norm, meanOf, parseAggregator, type Aggregator } from './aggregate';
import { Rng } from '../util/rng';

// Fresh inputs every run; the seed is in every failure message so a failure can be replayed.
const SEED = (Math.random() * 2 ** 32) >>> 0;
const rng = new Rng(SEED);

function randn(n: number, scale = 1): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = scale * rng.normal();
  return x;
}

// Direct references, in plain numbers: per coordinate, sort the column and take what the definition says.
function column(us: Float32Array[], i: number): number[] {
  return us.map((u) => u[i]).sort((a, b) => a - b);
}
function refMean(us: Float32Array[]): number[] {
  return Array.from(us[0], (_, i) => us.reduce((a, u) => a + u[i], 0) / us.length);
}
function refMedian(us: Float32Array[]): number[] {
  return Array.from(us[0], (_, i) => {
    const c = column(us, i);
    const k = c.length;
    return k % 2 ? c[(k - 1) / 2] : (c[k / 2 - 1] + c[k / 2]) / 2;
  });
}
function refTrimmed(us: Float32Array[], f: number): number[] {
  const t = Math.floor(f * us.length);
  return Array.from(us[0], (_, i) => {
    const kept = column(us, i).slice(t, us.length - t);
    return kept.reduce((a, b) => a + b, 0) / kept.length;
  });
}
function refClipped(us: Float32Array[], tau: number): number[] {
  const norms = us.map((u) => Math.hypot(...u));
  const sorted = [...norms].sort((a, b) => a - b);
  const limit = tau * sorted[Math.floor((us.length - 1) / 2)];
  const scaled = us.map((u, j) => Float32Array.from(u, (x) => x * Math.min(1, limit / norms[j])));
  return refMean(scaled.map((u) => Float32Array.from(u)));
}

/** |got − want| ≤ 1e-6·(1 + |want|) per coordinate: f32 output rounding, the references are f64. */
function assertClose(got: Float32Array, want: number[], what: string): void {
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++) {
    assert.ok(
      Math.abs(got[i] - want[i]) <= 1e-6 * (1 + Math.abs(want[i])),
      `${what} [seed ${SEED}]: coordinate ${i} is ${got[i]}, reference ${want[i]}`,
    );
  }
}

test('parseAggregator: the accepted forms, and errors naming the field, the value and the forms', () => {
  assert.deepEqual(parseAggregator('mean'), { kind: 'mean' });
  assert.deepEqual(parseAggregator('median'), { kind: 'median' });
  assert.deepEqual(parseAggregator('clipped-mean'), { kind: 'clipped-mean', tau: 2 });
  assert.deepEqual(parseAggregator('clipped-mean:3.5'), { kind: 'clipped-mean', tau: 3.5 });
  assert.deepEqual(parseAggregator('trimmed-mean:0.2'), { kind: 'trimmed-mean', fraction: 0.2 });
  assert.deepEqual(parseAggregator('trimmed-mean:0'), { kind: 'trimmed-mean', fraction: 0 });
  for (const name of ['mean', 'median', 'clipped-mean', 'clipped-mean:3', 'trimmed-mean:0.25'])
    assert.equal(aggregatorName(parseAggregator(name)), name);
  for (const bad of [
    '',
    'avg',
    'trimmed-mean',
    'trimmed-mean:0.5',
    'trimmed-mean:-0.1',
    'trimmed-mean:1e-1',
    'clipped-mean:0.5',
    'clipped-mean:',
    'median:1',
  ]) {
    assert.throws(
      () => parseAggregator(bad),
      (e: Error) =>
        e instanceof RangeError &&
        e.message.startsWith(`train.aggregator: ${JSON.stringify(bad)}`) &&
        e.message.includes('trimmed-mean:F'),
      bad,
    );
  }
});

test('each aggregator matches its direct reference (n = 1, 2, 3, 5; odd sizes)', () => {
  const aggs: [Aggregator, (us: Float32Array[]) => number[]][] = [
    [{ kind: 'mean' }, refMean],
    [{ kind: 'median' }, refMedian],
    [{ kind: 'trimmed-mean', fraction: 0.2 }, (us) => refTrimmed(us, 0.2)],
    [{ kind: 'trimmed-mean', fraction: 0.45 }, (us) => refTrimmed(us, 0.45)],
    [{ kind: 'clipped-mean', tau: 2 }, (us) => refClipped(us, 2)],
    [{ kind: 'clipped-mean', tau: 1 }, (us) => refClipped(us, 1)],
  ];
  for (const n of [1, 2, 3, 5]) {
    for (const size of [1, 7, 1001]) {
      // Norms spread over ×10 so clipping really happens.
      const us = Array.from({ length: n }, () => randn(size, 0.1 + 3 * rng.next()));
      for (const [agg, ref] of aggs)
        assertClose(aggregate(us, agg).g, ref(us), `${aggregatorName(agg)} n=${n} size=${size}`);
    }
  }
});

test('mean is the f64-summed mean, bit for bit (what CoordinatorSync always averaged)', () => {
  const us = Array.from({ length: 3 }, () => randn(101));
  const want = new Float32Array(101);
  for (let i = 0; i < 101; i++) want[i] = (us[0][i] + us[1][i] + us[2][i]) / 3;
  assert.deepEqual(aggregate(us, { kind: 'mean' }).g, want);
  assert.deepEqual(meanOf(us), want);
});

test('small rounds: one update is returned as is; the median of two is their mean', () => {
  const u = randn(33);
  for (const name of ['mean', 'clipped-mean', 'median', 'trimmed-mean:0.4'])
    assert.deepEqual(aggregate([u], parseAggregator(name)).g, u, name);
  const v = randn(33);
  assertClose(aggregate([u, v], { kind: 'median' }).g, refMean([u, v]), 'median of 2');
  assertClose(aggregate([u, v], { kind: 'trimmed-mean', fraction: 0.4 }).g, refMean([u, v]), 'trimmed of 2');
  // Clipped-mean of two uses the smaller norm: a huge second update is cut to τ × the first's norm.
  const big = Float32Array.from(v, (x) => x * 1000);
  const r = aggregate([u, big], parseAggregator('clipped-mean'));
  assert.ok(r.checks[1].clipped && !r.checks[0].clipped);
  assert.ok(l2norm(r.g) <= (l2norm(u) * 3) / 2 + 1e-4, `[seed ${SEED}] ${l2norm(r.g)}`);
});

test('one Byzantine update among 4 honest ones: the robust aggregators stay near the honest mean, mean does not', () => {
  const size = 513;
  const base = randn(size);
  // Honest updates: a shared direction plus 30% per-donor noise.
  const honest = Array.from({ length: 4 }, () => {
    const noise = randn(size, 0.3);
    return Float32Array.from(base, (x, i) => x + noise[i]);
  });
  const hMean = Float32Array.from(refMean(honest));
  const attacks: [string, Float32Array][] = [
    ['×100', Float32Array.from(honest[0], (x) => 100 * x)],
    ['sign-flipped ×10', Float32Array.from(hMean, (x) => -10 * x)],
    ['noise of 100× the norm', randn(size, (100 * l2norm(hMean)) / Math.sqrt(size))],
  ];
  const dist = (a: Float32Array, b: Float32Array) => l2norm(Float32Array.from(a, (x, i) => x - b[i]));
  for (const [what, bad] of attacks) {
    const us = [...honest, bad];
    const n = us.length;
    // Clipped-mean (the honest ones are not clipped: their norms differ far less than 2×): the output
    // is (Σ honest + clipped bad)/n, so ‖g − honest mean‖ ≤ (‖honest mean‖ + τ·median norm)/n.
    const med = [...us.map(l2norm)].sort((a, b) => a - b)[2];
    const bound = (l2norm(hMean) + 2 * med) / n;
    const clipped = aggregate(us, parseAggregator('clipped-mean'));
    assert.deepEqual(
      clipped.checks.map((c) => c.clipped),
      [false, false, false, false, true],
      what,
    );
    assert.ok(
      dist(clipped.g, hMean) <= bound * (1 + 1e-5),
      `${what} [seed ${SEED}]: ${dist(clipped.g, hMean)} > ${bound}`,
    );
    assert.ok(dist(meanOf(us), hMean) > 3 * bound, `${what}: mean should be far off`);
    // The checks single the faulty one out.
    assert.ok(clipped.checks[4].normRatio > 5, what);
    for (const c of clipped.checks.slice(0, 4))
      assert.ok(c.normRatio < 1.5 && c.cosine > 0.5, `${what} ${JSON.stringify(c)}`);
    // A scaled honest update points the right way; the others do not.
    if (what !== '×100') assert.ok(clipped.checks[4].cosine < 0.5, what);
    // Median and trimmed-mean:0.2 (drops 1 of 5 per end): every coordinate within the honest range.
    for (const name of ['median', 'trimmed-mean:0.2']) {
      const g = aggregate(us, parseAggregator(name)).g;
      for (let i = 0; i < size; i++) {
        const c = honest.map((u) => u[i]);
        assert.ok(g[i] >= Math.min(...c) - 1e-6 && g[i] <= Math.max(...c) + 1e-6, `${name} ${what} coordinate ${i}`);
      }
    }
  }
});

test('checks: zero updates give ratio 1 and cosine 0', () => {
  const z = new Float32Array(5);
  const r = aggregate([z, z], { kind: 'clipped-mean', tau: 2 });
  assert.deepEqual(r.checks[0], { norm: 0, normRatio: 1, cosine: 0, clipped: false });
  assert.deepEqual(r.g, z);
});
