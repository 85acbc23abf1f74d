import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CoordinatorSync, DonorSync, applyStep, type SyncConfig } from './sync';
import { OuterOptimizer, defaultOuter } from './outer';
import { jobCodec } from './job-codec';
import { checkCodecName } from '../compress/codec-spec';
import type { TensorSpec } from '../compress/model-codec';
import { Rng } from '../util/rng';

// A small model layout with 2-D and 1-D tensors and odd sizes.
const LAYOUT: TensorSpec[] = [
  { name: 'w1', shape: [13, 29], offset: 0, size: 377 },
  { name: 'b1', shape: [29], offset: 377, size: 29 },
  { name: 'w2', shape: [29, 7], offset: 406, size: 203 },
  { name: 'b2', shape: [7], offset: 609, size: 7 },
];
const N = 616;

function randn(rng: Rng, n: number, scale: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = scale * (rng.next() * 2 - 1);
  return x;
}

const CODECS = [
  'f32',
  'f16',
  'int8',
  'q8',
  'q4:sr',
  'q2',
  'topk:0.01/q2',
  'randomk:0.1',
  'chunktop:32/q2',
  'cocktail',
  'powersgd:2',
];

for (const codec of CODECS) {
  test(`sync ${codec}: every donor reconstructs the coordinator's weights bit for bit, a late joiner from a snapshot too`, () => {
    const rng = new Rng(7);
    const cfg: SyncConfig = { codec, downCodec: codec, outer: { lr: 0.7, momentum: 0.9 }, seed: 11 };
    const theta0 = randn(rng, N, 1);
    const coord = new CoordinatorSync(cfg, LAYOUT, theta0, 0);
    const donors = [0, 1, 2].map(() => new DonorSync(cfg, LAYOUT));
    for (const d of donors) d.setSnapshot(theta0, 0);
    for (let round = 0; round < 6; round++) {
      if (round === 3) {
        // A new donor joins from the coordinator's current weights.
        const late = new DonorSync(cfg, LAYOUT);
        late.setSnapshot(coord.params, coord.version);
        donors.push(late);
      }
      const deltas = donors.map((d, i) => {
        const local = applyStep(d.params!, randn(rng, N, 0.01));
        const seed = 1000 * round + i;
        return coord.decodeUpdate(d.encodeUpdate(local, seed, round), seed, round);
      });
      const bytes = coord.commit(deltas);
      for (const d of donors) {
        d.applyDelta(coord.version - 1, coord.version, bytes);
        assert.deepEqual(
          new Uint8Array(d.params!.buffer),
          new Uint8Array(coord.params.buffer),
          `round ${round}: a donor's weights differ`,
        );
      }
    }
    // The weights moved (the test would pass trivially if nothing were applied).
    assert.ok(coord.params.some((v, i) => v !== theta0[i]));
  });
}

test('sync f32 at lr 1, momentum 0: θ_{v+1} = θ_v − mean Δ, each Δ the donor’s exact θ_v − θ_local', () => {
  const rng = new Rng(3);
  const cfg: SyncConfig = { codec: 'f32', downCodec: 'f32', outer: defaultOuter(1), seed: 1 };
  const theta = randn(rng, N, 1);
  const coord = new CoordinatorSync(cfg, LAYOUT, theta, 5);
  const locals = [0, 1].map(() => randn(rng, N, 1));
  const d = new DonorSync(cfg, LAYOUT);
  d.setSnapshot(theta, 5);
  const deltas = locals.map((l, i) => coord.decodeUpdate(d.encodeUpdate(l, i, 0), i, 0));
  coord.commit(deltas);
  assert.equal(coord.version, 6);
  for (let i = 0; i < N; i++) {
    const d0 = Math.fround(theta[i] - locals[0][i]);
    const d1 = Math.fround(theta[i] - locals[1][i]);
    const want = Math.fround(theta[i] - Math.fround((d0 + d1) / 2));
    assert.equal(coord.params[i], want, `param ${i}`);
  }
});

test('outer Nesterov: three steps match PyTorch SGD(nesterov) computed in float64', () => {
  const rng = new Rng(5);
  const n = 37;
  const opt = new OuterOptimizer({ lr: 0.7, momentum: 0.9 }, n);
  const buf = new Float64Array(n);
  for (let t = 0; t < 3; t++) {
    const g = randn(rng, n, 1);
    const s = opt.step(g);
    for (let i = 0; i < n; i++) {
      buf[i] = 0.9 * buf[i] + g[i];
      const want = 0.7 * (g[i] + 0.9 * buf[i]);
      assert.ok(Math.abs(s[i] - want) <= 1e-6 * (1 + Math.abs(want)), `step ${t} element ${i}: ${s[i]} vs ${want}`);
    }
  }
  assert.throws(() => new OuterOptimizer({ lr: 0.7, momentum: 1 }, n), /outer momentum must be in \[0, 1\), got 1/);
  assert.throws(() => new OuterOptimizer({ lr: 0, momentum: 0 }, n), /outer lr must be in \(0, 10\], got 0/);
});

test('sync downlink error feedback: what a 2-bit broadcast drops goes out later (applied sum tracks the true sum)', () => {
  const rng = new Rng(9);
  const cfg: SyncConfig = { codec: 'f32', downCodec: 'q2', outer: { lr: 1, momentum: 0 }, seed: 2 };
  const theta = randn(rng, N, 1);
  const coord = new CoordinatorSync(cfg, LAYOUT, theta, 0);
  const g = randn(rng, N, 0.01);
  const rounds = 40;
  for (let r = 0; r < rounds; r++) coord.commit([g]);
  // Without error feedback the 2-bit rounding error of the same g would add up rounds times.
  let err = 0;
  let ref = 0;
  for (let i = 0; i < N; i++) {
    const want = theta[i] - rounds * g[i];
    err += (coord.params[i] - want) ** 2;
    ref += (rounds * g[i]) ** 2;
  }
  assert.ok(Math.sqrt(err / ref) < 0.05, `relative error of the applied sum ${Math.sqrt(err / ref)} ≥ 0.05`);
});

test('sync rejects a wrong-size, undecodable or non-finite update with a message naming the limit', () => {
  const rng = new Rng(1);
  const cfg: SyncConfig = { codec: 'q4', downCodec: 'q4', outer: defaultOuter(10), seed: 1 };
  const coord = new CoordinatorSync(cfg, LAYOUT, randn(rng, N, 1), 0);
  const size = jobCodec('q4', LAYOUT).encodedBytes(N);
  assert.throws(
    () => coord.decodeUpdate(new Uint8Array(size + 4), 1, 0),
    new RegExp(`update is ${size + 4} bytes; q4 of 616 parameters is exactly ${size}`),
  );
  const topk = new CoordinatorSync({ ...cfg, codec: 'topk:0.1' }, LAYOUT, randn(rng, N, 1), 0);
  const max = jobCodec('topk:0.1', LAYOUT).encodedBytes(N);
  assert.throws(() => topk.decodeUpdate(new Uint8Array(max + 1), 1, 0), new RegExp(`is at most ${max}`));
  assert.throws(
    () => coord.decodeUpdate(new Uint8Array(size), 1, 0),
    /update does not decode as q4: model codec decode: version 0/,
  );
  const d = new DonorSync(cfg, LAYOUT);
  d.setSnapshot(randn(rng, N, 1), 0);
  const bad = new Float32Array(N);
  bad[5] = NaN;
  assert.throws(() => d.encodeUpdate(bad, 1, 0), /NaN at parameter 5: local training diverged/);
  assert.throws(
    () => d.applyDelta(3, 4, new Uint8Array(size)),
    /step from v3 to v4, but this donor holds v0; it needs a snapshot/,
  );
  assert.throws(() => checkCodecName('q5'), /unknown codec name|q5/);
  assert.equal(checkCodecName('topk:0.010/q2'), 'topk:0.01/q2');
});

test('donor error feedback with decay β: d = Δ + β·residual (β = 0: no memory, β = 1: classic)', () => {
  const rng = new Rng(4);
  const theta = randn(rng, N, 1);
  const steps = [0, 1, 2].map(() => applyStep(theta, randn(rng, N, 0.01)));
  const codec = jobCodec('topk:0.05', LAYOUT);
  for (const beta of [0, 0.5, 1]) {
    const d = new DonorSync({ codec: 'topk:0.05', downCodec: 'f32', seed: 1, errorDecay: beta }, LAYOUT);
    d.setSnapshot(theta, 0);
    // Reference: the same recurrence in plain code.
    let residual = new Float32Array(N);
    steps.forEach((local, round) => {
      const want = new Float32Array(N);
      for (let i = 0; i < N; i++) want[i] = Math.fround(theta[i] - local[i]) + beta * residual[i];
      const ctx = { seed: round, round, stream: 0 };
      const bytes = d.encodeUpdate(local, round, round);
      assert.deepEqual(bytes, codec.encode(want, ctx), `β = ${beta}, round ${round}`);
      const sent = codec.decode(bytes, N, ctx);
      residual = want.map((v, i) => v - sent[i]);
    });
  }
  assert.throws(
    () => new DonorSync({ codec: 'q4', downCodec: 'q4', seed: 1, errorDecay: 1.5 }, LAYOUT),
    /decay must be in \[0, 1\], got 1.5/,
  );
});

test('default outer optimizer: averaging at H = 1, Nesterov 0.7/0.9 at H > 1, lr 1 without momentum for sparsifiers', () => {
  assert.deepEqual(defaultOuter(1, 'topk:0.04/q2'), { lr: 1, momentum: 0 });
  assert.deepEqual(defaultOuter(1, 'q4'), { lr: 1, momentum: 0 });
  for (const c of ['f32', 'q4', 'int8', 'powersgd:2'])
    assert.deepEqual(defaultOuter(10, c), { lr: 0.7, momentum: 0.9 }, c);
  for (const c of ['topk:0.04/q2', 'randomk:0.1', 'chunktop:32/q2', 'cocktail'])
    assert.deepEqual(defaultOuter(10, c), { lr: 1, momentum: 0 }, c);
});

test('a coordinator restored from its state (momentum, downlink residual) continues bit for bit; bad state is refused', () => {
  const rng = new Rng(9);
  const cfg: SyncConfig = {
    codec: 'topk:0.1/q2',
    downCodec: 'topk:0.1/q2',
    outer: { lr: 0.7, momentum: 0.9 },
    seed: 3,
  };
  const theta = randn(rng, N, 1);
  const gs = Array.from({ length: 5 }, () => [randn(rng, N, 0.1), randn(rng, N, 0.1)]);
  const a = new CoordinatorSync(cfg, LAYOUT, theta.slice(), 0);
  for (const g of gs.slice(0, 3)) a.commit(g);
  assert.ok(a.state.momentum && a.state.residual.some((x) => x !== 0), 'the state is not trivial');
  // A restart: θ and version from the checkpoint, plus the state (copied, as a file would give it).
  const b = new CoordinatorSync(cfg, LAYOUT, a.params.slice(), a.version);
  const fresh = new CoordinatorSync(cfg, LAYOUT, a.params.slice(), a.version);
  b.restoreState({ momentum: a.state.momentum.slice(), residual: a.state.residual.slice() });
  for (const g of gs.slice(3)) {
    const want = a.commit(g);
    assert.deepEqual(b.commit(g), want);
    assert.notDeepEqual(fresh.commit(g), want, 'without the state the steps differ');
  }
  assert.deepEqual(b.params, a.params);
  assert.throws(
    () => b.restoreState({ momentum: new Float32Array(N - 1), residual: new Float32Array(N) }),
    new RegExp(`outer momentum has ${N - 1} values, the model has ${N}`),
  );
  const nan = new Float32Array(N);
  nan[7] = NaN;
  assert.throws(() => b.restoreState({ momentum: null, residual: nan }), /downlink residual element 7 is NaN/);
});

test('revert undoes a commit exactly: the next commit is bit for bit what it would have been without it', () => {
  const rng = new Rng(11);
  const cfg: SyncConfig = { codec: 'q4', downCodec: 'q2', outer: { lr: 0.7, momentum: 0.9 }, seed: 5 };
  const theta = randn(rng, N, 1);
  const gs = Array.from({ length: 3 }, () => [randn(rng, N, 0.1), randn(rng, N, 0.1)]);
  const huge = [randn(rng, N, 1e6)];
  const a = new CoordinatorSync(cfg, LAYOUT, theta.slice(), 0);
  const b = new CoordinatorSync(cfg, LAYOUT, theta.slice(), 0);
  a.commit(gs[0]);
  b.commit(gs[0]);
  const last = b.last;
  b.commit(huge);
  b.revert();
  assert.equal(b.version, 1);
  assert.equal(b.last, last, 'the refused step is not the last broadcast');
  assert.deepEqual(b.params, a.params);
  assert.throws(() => b.revert(), /no commit to undo/);
  for (const g of gs.slice(1)) assert.deepEqual(b.commit(g), a.commit(g));
  assert.deepEqual(b.params, a.params);
});

test('the aggregator: default mean; clipped-mean bounds a ×1000 update; per-update checks are kept', () => {
  const rng = new Rng(12);
  const base = { codec: 'f32', downCodec: 'f32', outer: { lr: 1, momentum: 0 }, seed: 1 };
  const theta = randn(rng, N, 1);
  const honest = [randn(rng, N, 0.01), randn(rng, N, 0.01)];
  const bad = honest[0].map((x) => 1000 * x);
  const mean = new CoordinatorSync(base, LAYOUT, theta.slice(), 0);
  const clip = new CoordinatorSync({ ...base, aggregator: 'clipped-mean' }, LAYOUT, theta.slice(), 0);
  assert.deepEqual(mean.aggregator, { kind: 'mean' });
  mean.commit([...honest, bad]);
  clip.commit([...honest, bad]);
  const moved = (p: Float32Array) => Math.hypot(...p.map((x, i) => x - theta[i]));
  const honestNorm = Math.max(...honest.map((u) => Math.hypot(...u)));
  // One of 3 clipped to 2 × the median norm: the step is at most (2 honest + 2·median)/3 ≤ 4/3 of the largest honest norm.
  assert.ok(moved(clip.params) <= (4 / 3) * honestNorm * (1 + 1e-5), `${moved(clip.params)}`);
  assert.ok(moved(mean.params) > 100 * honestNorm);
  assert.deepEqual(
    clip.checks.map((c) => c.clipped),
    [false, false, true],
  );
  assert.ok(clip.checks[2].normRatio > 500);
});

test('a commit whose step the broadcast codec cannot encode throws and changes nothing', () => {
  const rng = new Rng(13);
  const cfg: SyncConfig = { codec: 'f32', downCodec: 'f32', outer: { lr: 2, momentum: 0.5 }, seed: 2 };
  const theta = randn(rng, N, 1);
  const c = new CoordinatorSync(cfg, LAYOUT, theta.slice(), 0);
  c.commit([randn(rng, N, 0.1)]);
  const before = { params: c.params, version: c.version, last: c.last, momentum: c.state.momentum!.slice() };
  const residual = c.state.residual.slice();
  assert.throws(() => c.commit([new Float32Array(N).fill(3e38)]), /Infinity/);
  assert.deepEqual({ params: c.params, version: c.version, last: c.last, momentum: c.state.momentum }, before);
  assert.deepEqual(c.state.residual, residual);
});
