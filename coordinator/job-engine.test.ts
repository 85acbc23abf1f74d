// The synchronous-rounds engine driven by in-memory donor links: no WebRTC, no GPU. Update bodies
// are made by the real int8 job codec (src/sync), so the engine's arithmetic is checked against a plain f64 CPU
// computation over the same decoded values. Deadlines run on node:test's mocked setTimeout; the
// engine's progress is awaited through its `round` event and the links' `sent` events.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { JobEngine, type DonorLink, type DonorView, type EngineConfig, type RoundResult } from './job-engine';
import { JobTrain } from '../src/schema/job';
import { withDefaults } from '../src/schema/check';
import { jobCodec } from '../src/sync/job-codec';
import { DonorSync, type CoordinatorState } from '../src/sync/sync';
import { modelParamSpecs } from '../src/model/model';
import type { UpdateHeader } from '../src/protocol/messages';

// ---- fakes ----------------------------------------------------------------------------------

interface Sent {
  kind: string;
  header: Record<string, unknown>;
  body?: Uint8Array;
}

/** A donor connection that records what the engine sends and counts bytes like a channel. */
class FakeLink implements DonorLink {
  readonly sent: Sent[] = [];
  closedWith: string | null = null;
  private down = 0;
  private up = 0;
  private readonly events = new EventEmitter();

  constructor(
    readonly donorId: string,
    readonly adapter = 'fake adapter',
  ) {}

  async send(kind: string, header: Record<string, unknown>, body?: Uint8Array): Promise<void> {
    this.sent.push({ kind, header, body });
    this.down += sizeOf(header, body);
    this.events.emit('sent');
  }

  close(reason: string): void {
    this.closedWith = reason;
  }

  bytesSent(): number {
    return this.down;
  }

  bytesReceived(): number {
    return this.up;
  }

  /** What the channel counts when the donor's message arrives. */
  received(header: object, body: Uint8Array): void {
    this.up += sizeOf(header, body);
  }

  kinds(): string[] {
    return this.sent.map((s) => s.kind);
  }

  of(kind: string): Sent[] {
    return this.sent.filter((s) => s.kind === kind);
  }

  /** Resolves with the `count`-th message of `kind` once it has been sent. */
  waitFor(kind: string, count = 1): Promise<Sent> {
    return new Promise((resolve) => {
      const check = () => {
        const m = this.of(kind);
        if (m.length < count) return false;
        this.events.off('sent', check);
        resolve(m[count - 1]);
        return true;
      };
      if (!check()) this.events.on('sent', check);
    });
  }
}

function sizeOf(header: object, body?: Uint8Array): number {
  return Buffer.byteLength(JSON.stringify(header)) + (body?.byteLength ?? 0);
}

/** Deterministic pseudo-random numbers in [-1, 1) (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}

function randomVector(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = scale * r();
  return v;
}

function sumOfSquares(p: Float32Array): number {
  let s = 0;
  for (const x of p) s += x * x;
  return s;
}

/** θ − outerLr · mean(Δ), in f64: the CPU reference of the outer step. */
function outerStep(theta: Float32Array, deltas: Float32Array[], outerLr: number): Float64Array {
  const out = new Float64Array(theta.length);
  for (let i = 0; i < theta.length; i++) {
    let s = 0;
    for (const d of deltas) s += d[i];
    out[i] = theta[i] - (outerLr * s) / deltas.length;
  }
  return out;
}

/** Elementwise closeness at f32 rounding level (int8 quantization error is ~1000x larger). */
function assertClose(got: Float32Array, want: Float64Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    const tol = 1e-6 * (1 + Math.abs(want[i]));
    if (!(Math.abs(got[i] - want[i]) <= tol)) {
      assert.fail(`${what}: element ${i} is ${got[i]}, expected ${want[i]} (±${tol})`);
    }
  }
}

// ---- harness --------------------------------------------------------------------------------

const N = 302; // the test model's parameter count: two int8 blocks, the second one partial

/** Overrides of the train section, plus the engine's own dropAfterMisses. */
type ConfigOver = Partial<JobTrain> & { dropAfterMisses?: number };

function config({ dropAfterMisses = 5, ...over }: ConfigOver = {}): EngineConfig {
  return {
    jobId: 'job-1',
    name: 'engine test',
    model: { type: 'mlp', vocab: 4, context: 2, embed: 3, hidden: 26 },
    vocab: ['a', 'b', 'c', 'd'],
    // The schema's defaults for the rest of the train section.
    train: withDefaults<JobTrain>(JobTrain, {
      rounds: 1,
      localSteps: 7,
      batch: 16,
      lr: 0.01,
      gradClip: 0,
      roundDeadlineMs: 10_000,
      shards: 4,
      seed: 3,
      outerLr: 0.5,
      outerMomentum: 0,
      codec: 'int8',
      downCodec: 'f32',
      // These tests check the plain mean's arithmetic; the robust aggregators have their own tests.
      aggregator: 'mean',
      ...over,
    }),
    dropAfterMisses,
  };
}

interface Harness {
  engine: JobEngine;
  rounds: RoundResult[];
  checkpoints: { version: number; params: Float32Array; sync: CoordinatorState }[];
  donorRecords: DonorView[];
  evaluated: Float32Array[];
  logs: string[];
}

function setup(
  t: TestContext,
  over: ConfigOver = {},
  opts: {
    params?: Float32Array;
    version?: number;
    round?: number;
    checkpoint?: (version: number) => Promise<void>;
    resume?: CoordinatorState;
  } = {},
): Harness {
  const h: Harness = {
    engine: undefined as unknown as JobEngine,
    rounds: [],
    checkpoints: [],
    donorRecords: [],
    evaluated: [],
    logs: [],
  };
  h.engine = new JobEngine(
    config(over),
    opts.params ?? randomVector(N, 1),
    opts.version ?? 0,
    opts.round ?? 0,
    {
      evaluate: (p) => {
        h.evaluated.push(p);
        // The mean square stands in for the loss: honest test steps move it far less than ln(vocab).
        return sumOfSquares(p) / p.length;
      },
      checkpoint: async (version, params, sync) => {
        h.checkpoints.push({
          version,
          params: params.slice(),
          sync: { momentum: sync.momentum?.slice() ?? null, residual: sync.residual.slice() },
        });
        await opts.checkpoint?.(version);
      },
      recordRound: (r) => h.rounds.push(r),
      recordDonor: (d) => h.donorRecords.push(d),
      log: (line) => h.logs.push(line),
    },
    opts.resume,
  );
  t.after(() => h.engine.stop());
  return h;
}

/** A donor that connected and says it is ready with `version` (-1: holds no weights). */
function join(engine: JobEngine, id: string, version = -1): FakeLink {
  const link = new FakeLink(id);
  engine.addDonor(link);
  engine.onReady(id, version);
  return link;
}

/** Sends the int8 encoding of `delta` as the donor's update; returns the values the engine decodes. */
function update(
  engine: JobEngine,
  link: FakeLink,
  delta: Float32Array,
  over: Partial<UpdateHeader> = {},
  body = upCodec(engine).encode(delta),
): Float32Array {
  const header: UpdateHeader = {
    jobId: engine.cfg.jobId,
    round: engine.round,
    baseVersion: engine.version,
    steps: engine.cfg.train.localSteps,
    loss: 2.5,
    tokens: 100,
    codec: 'int8',
    n: delta.length,
    computeMs: 5,
    ...over,
  };
  link.received(header, body);
  engine.onUpdate(link.donorId, header, body);
  return upCodec(engine).decode(body, delta.length);
}

/** The job's update codec, as a donor builds it. */
function upCodec(engine: JobEngine) {
  return jobCodec(engine.cfg.train.codec, modelParamSpecs(engine.cfg.model));
}

function nextRound(engine: JobEngine): Promise<RoundResult> {
  return once(engine, 'round').then(([r]) => r as RoundResult);
}

/** Lets every pending promise continuation run (to check that something did *not* happen). */
const drain = () => new Promise<void>((r) => setImmediate(r));

function lastRecord(h: Harness, donorId: string): DonorView | undefined {
  return h.donorRecords.filter((d) => d.donorId === donorId).at(-1);
}

// ---- tests ----------------------------------------------------------------------------------

test(
  'a round with two donors applies θ ← θ − outerLr·mean(decoded Δ) and records it',
  { timeout: 10_000 },
  async (t) => {
    const h = setup(t, { minDonors: 2, outerLr: 0.5 });
    const { engine } = h;
    const theta = engine.params.slice();
    const run = engine.run();
    const a = join(engine, 'A');
    const b = join(engine, 'B');
    const [assignA, assignB] = await Promise.all([a.waitFor('assign'), b.waitFor('assign')]);
    for (const [link, m] of [
      [a, assignA],
      [b, assignB],
    ] as const) {
      assert.equal(m.header.jobId, 'job-1');
      assert.equal(m.header.round, 0);
      assert.equal(m.header.version, 0);
      assert.equal(m.header.steps, engine.cfg.train.localSteps);
      assert.equal(m.header.deadlineMs, engine.cfg.train.roundDeadlineMs);
      assert.equal(m.header.shard, engine.donors.get(link.donorId)!.shard);
    }
    assert.notEqual(assignA.header.shard, assignB.header.shard, 'donors get different shards');
    assert.notEqual(assignA.header.seed, assignB.header.seed, 'donors get different seeds');

    const dA = update(engine, a, randomVector(N, 11, 0.05), { loss: 2 });
    const dB = update(engine, b, randomVector(N, 12, 0.3), { loss: 3 });
    assert.equal(await run, 'done');

    assertClose(engine.params, outerStep(theta, [dA, dB], 0.5), 'new weights');
    assert.equal(engine.version, 1);
    assert.equal(engine.round, 1);
    assert.deepEqual(
      h.checkpoints.map((c) => c.version),
      [1],
    );
    assert.deepEqual(h.checkpoints[0].params, engine.params);
    assert.equal(h.rounds.length, 1);
    const r = h.rounds[0];
    assert.equal(r.round, 0);
    assert.equal(r.version, 1);
    assert.equal(r.assigned, 2);
    assert.equal(r.accepted, 2);
    assert.equal(r.late, 0);
    assert.equal(r.rejected, 0);
    assert.equal(r.dropped, 0);
    assert.equal(r.trainLoss, 2.5);
    assert.equal(r.valLoss, sumOfSquares(engine.params) / N);
    assert.deepEqual([...r.donors].sort(), ['A', 'B']);
    // Bytes moved in the round: weights + assign down, the update up (the `job` message came before).
    const roundDown = (l: FakeLink) =>
      l.sent
        .filter((m) => m.kind === 'weights' || m.kind === 'assign')
        .reduce((s, m) => s + sizeOf(m.header, m.body), 0);
    assert.equal(r.bytesDown, roundDown(a) + roundDown(b));
    assert.equal(r.bytesUp, a.bytesReceived() + b.bytesReceived());
    for (const v of engine.donorViews()) assert.equal(v.roundsContributed, 1);
  },
);

test('weights go before assign only to donors that do not hold the current version', { timeout: 10_000 }, async (t) => {
  const h = setup(t, { minDonors: 2, rounds: 2 });
  const { engine } = h;
  const run = engine.run();
  const fresh = join(engine, 'fresh', -1);
  const holder = join(engine, 'holder', 0);
  await Promise.all([fresh.waitFor('assign'), holder.waitFor('assign')]);
  assert.deepEqual(fresh.kinds(), ['job', 'weights', 'assign']);
  assert.deepEqual(holder.kinds(), ['job', 'assign']);
  const w = fresh.of('weights')[0];
  assert.deepEqual(w.header, { jobId: 'job-1', version: 0, n: N, encoding: 'f32' });
  assert.deepEqual(new Float32Array(w.body!.slice().buffer), engine.params);

  update(engine, fresh, randomVector(N, 21, 0.1));
  update(engine, holder, randomVector(N, 22, 0.1));
  // Version 1 exists now: both hold version 0, so both get the broadcast step 0 → 1 before round 1,
  // and applying it to version 0 gives the coordinator's weights bit for bit.
  await Promise.all([fresh.waitFor('assign', 2), holder.waitFor('assign', 2)]);
  for (const l of [fresh, holder]) {
    // One message: the assignment for version 1 carrying the step 0 → 1.
    assert.deepEqual(l.kinds().slice(-2), ['assign', 'assign']);
    const m = l.of('assign').at(-1)!;
    assert.equal(m.header.version, 1);
    assert.equal(m.header.round, 1);
    const donor = new DonorSync(
      { codec: 'int8', downCodec: 'f32', seed: engine.cfg.train.seed },
      modelParamSpecs(engine.cfg.model),
    );
    donor.setSnapshot(new Float32Array(w.body!.slice().buffer), 0);
    donor.applyDelta(0, 1, m.body!);
    assert.deepEqual(donor.params, engine.params);
  }
  // Round 0's assignments carried no step (both held version 0 after the snapshot).
  for (const l of [fresh, holder]) assert.equal(l.of('assign')[0].body, undefined);
  update(engine, fresh, randomVector(N, 23, 0.1));
  update(engine, holder, randomVector(N, 24, 0.1));
  assert.equal(await run, 'done');
});

test(
  'the weights body holds exactly the n parameters when params is a view into a larger buffer',
  { timeout: 10_000 },
  async (t) => {
    const backing = randomVector(N + 10, 31); // junk around the view
    const params = new Float32Array(backing.buffer, 4 * 3, N);
    const h = setup(t, {}, { params });
    const run = h.engine.run();
    const a = join(h.engine, 'A');
    const w = await a.waitFor('weights');
    assert.equal(w.body!.byteLength, 4 * N);
    assert.deepEqual(new Float32Array(w.body!.slice().buffer), params);
    h.engine.stop();
    assert.equal(await run, 'stopped');
  },
);

test(
  'the round ends as soon as every assigned donor answered, long before the deadline',
  { timeout: 10_000 },
  async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] }); // the deadline can only pass if the test ticks
    const h = setup(t, { minDonors: 2, roundDeadlineMs: 3_600_000, rounds: 2 });
    const { engine } = h;
    const run = engine.run();
    const a = join(engine, 'A');
    const b = join(engine, 'B');
    await Promise.all([a.waitFor('assign'), b.waitFor('assign')]);
    const ended = nextRound(engine);
    update(engine, a, randomVector(N, 41, 0.1));
    await drain();
    assert.equal(h.rounds.length, 0, 'still waiting for B');
    update(engine, b, randomVector(N, 42, 0.1));
    const r = await ended; // no tick: the deadline never passed
    assert.equal(r.accepted, 2);
    // The next round starts at once too.
    await Promise.all([a.waitFor('assign', 2), b.waitFor('assign', 2)]);
    engine.stop();
    assert.equal(await run, 'stopped');
  },
);

test(
  'a donor that could not apply the step (ready with version -1 ' +
    'mid-round) is released from the round, which ends without it',
  { timeout: 10_000 },
  async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] }); // the deadline can only pass if the test ticks
    const h = setup(t, { minDonors: 2, roundDeadlineMs: 3_600_000, rounds: 3 });
    const { engine } = h;
    const run = engine.run();
    const a = join(engine, 'A');
    const b = join(engine, 'B');
    await Promise.all([a.waitFor('assign'), b.waitFor('assign')]);
    update(engine, a, randomVector(N, 51, 0.1));
    update(engine, b, randomVector(N, 52, 0.1));
    await Promise.all([a.waitFor('assign', 2), b.waitFor('assign', 2)]);
    assert.ok(b.of('assign')[1].body, 'round 1 carries the step 0 → 1');
    const ended = nextRound(engine);
    engine.onReady('B', -1); // B's worker refused the step
    update(engine, a, randomVector(N, 53, 0.1));
    const r = await ended; // no tick: the round did not wait for B's deadline
    assert.deepEqual([r.accepted, r.assigned], [1, 2]);
    // B holds nothing now, so round 2 brings it a full snapshot before its assignment.
    await b.waitFor('assign', 3);
    assert.deepEqual(b.kinds().slice(-2), ['weights', 'assign']);
    assert.equal(b.of('assign').at(-1)!.body, undefined);
    engine.stop();
    assert.equal(await run, 'stopped');
  },
);

test(
  'a restarted engine resumes the outer momentum and downlink residual from its checkpoint and continues bit for bit',
  { timeout: 10_000 },
  async (t) => {
    const over: ConfigOver = { outerLr: 0.7, outerMomentum: 0.9, downCodec: 'q2', rounds: 3 };
    const deltas = [0, 1, 2].map((r) => randomVector(N, 60 + r, 0.1));
    const h = setup(t, over);
    const run = h.engine.run();
    const a = join(h.engine, 'A');
    for (let r = 0; r < 3; r++) {
      await a.waitFor('assign', r + 1);
      update(h.engine, a, deltas[r]);
    }
    assert.equal(await run, 'done');
    assert.deepEqual(
      h.checkpoints.map((c) => c.version),
      [1, 2, 3],
    );
    const ck = h.checkpoints[1];
    assert.ok(ck.sync.momentum && ck.sync.residual.some((x) => x !== 0), 'momentum and a downlink residual to carry');
    // The same round 2 after a restart from v2, with and without the checkpointed state.
    const finals: Float32Array[] = [];
    for (const resume of [ck.sync, undefined]) {
      const r = setup(t, over, { params: ck.params.slice(), version: 2, round: 2, resume });
      const rerun = r.engine.run();
      const b = join(r.engine, 'B');
      await b.waitFor('assign');
      update(r.engine, b, deltas[2]);
      assert.equal(await rerun, 'done');
      finals.push(r.checkpoints.at(-1)!.params);
    }
    assert.deepEqual(finals[0], h.checkpoints[2].params, 'resumed: bit for bit the uninterrupted run');
    assert.notDeepEqual(finals[1], h.checkpoints[2].params, 'without the state the step differs');
  },
);

test(
  'a silent donor: the round ends at the deadline without it, and it is dropped after dropAfterMisses',
  { timeout: 10_000 },
  async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const deadline = 5_000;
    const h = setup(t, { roundDeadlineMs: deadline, dropAfterMisses: 2, rounds: 3, outerLr: 1 });
    const { engine } = h;
    const run = engine.run();
    const a = join(engine, 'A');
    const silent = join(engine, 'S');
    await Promise.all([a.waitFor('assign'), silent.waitFor('assign')]);

    // Round 0: A answers, S does not.
    const theta0 = engine.params.slice();
    const dA0 = update(engine, a, randomVector(N, 51, 0.1));
    await drain();
    assert.equal(h.rounds.length, 0, 'the round waits for S');
    t.mock.timers.tick(deadline - 1);
    await drain();
    assert.equal(h.rounds.length, 0, 'not before the deadline');
    let ended = nextRound(engine);
    t.mock.timers.tick(1);
    let r = await ended;
    assert.equal(r.assigned, 2);
    assert.equal(r.accepted, 1);
    assert.equal(r.dropped, 0);
    assert.deepEqual(r.donors, ['A']);
    assertClose(engine.params, outerStep(theta0, [dA0], 1), 'round 0 weights (A only)');
    assert.equal(engine.donors.get('S')!.misses, 1);
    assert.equal(silent.closedWith, null);

    // Round 1: S misses again and is closed and removed.
    await Promise.all([a.waitFor('assign', 2), silent.waitFor('assign', 2)]);
    update(engine, a, randomVector(N, 52, 0.1));
    ended = nextRound(engine);
    t.mock.timers.tick(deadline);
    r = await ended;
    assert.equal(r.dropped, 1);
    assert.equal(r.accepted, 1);
    assert.match(silent.closedWith ?? '', /missed 2 round deadlines/);
    assert.equal(engine.donors.has('S'), false);
    assert.equal(lastRecord(h, 'S')?.state, 'gone');
    assert.equal(engine.donors.get('A')!.misses, 0);

    // Round 2 goes on with A alone.
    const assign = await a.waitFor('assign', 3);
    assert.equal(assign.header.round, 2);
    assert.equal(silent.of('assign').length, 2);
    update(engine, a, randomVector(N, 53, 0.1));
    assert.equal(await run, 'done');
    assert.equal(h.rounds.at(-1)!.assigned, 1);
  },
);

test(
  'a late update (old round or old base version) is counted late and not applied',
  { timeout: 10_000 },
  async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const deadline = 2_000;
    const h = setup(t, { roundDeadlineMs: deadline, rounds: 2, outerLr: 0.8 });
    const { engine } = h;
    const run = engine.run();
    const a = join(engine, 'A');
    const b = join(engine, 'B');
    await Promise.all([a.waitFor('assign'), b.waitFor('assign')]);
    update(engine, a, randomVector(N, 61, 0.1));
    const ended = nextRound(engine);
    t.mock.timers.tick(deadline);
    assert.equal((await ended).late, 0);

    await Promise.all([a.waitFor('assign', 2), b.waitFor('assign', 2)]);
    const theta1 = engine.params.slice();
    // B's round-0 work arrives during round 1, and an update for round 1 built on version 0.
    assert.doesNotThrow(() => update(engine, b, randomVector(N, 62, 0.5), { round: 0, baseVersion: 0 }));
    assert.doesNotThrow(() => update(engine, b, randomVector(N, 63, 0.5), { round: 1, baseVersion: 0 }));
    assert.equal(
      engine.params.every((x, i) => x === theta1[i]),
      true,
      'late updates do not move the weights',
    );
    const dA = update(engine, a, randomVector(N, 64, 0.1));
    const dB = update(engine, b, randomVector(N, 65, 0.1));
    assert.equal(await run, 'done');
    const r = h.rounds[1];
    assert.equal(r.late, 2);
    assert.equal(r.accepted, 2);
    assertClose(engine.params, outerStep(theta1, [dA, dB], 0.8), 'round 1 weights (late ones left out)');
  },
);

test('a late update that arrives between rounds is still counted late', { timeout: 10_000 }, async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const deadline = 2_000;
  let enterCheckpoint!: () => void;
  const inCheckpoint = new Promise<void>((r) => (enterCheckpoint = r));
  let releaseCheckpoint!: () => void;
  const gate = new Promise<void>((r) => (releaseCheckpoint = r));
  const h = setup(
    t,
    { roundDeadlineMs: deadline },
    {
      checkpoint: async () => {
        enterCheckpoint();
        await gate;
      },
    },
  );
  const { engine } = h;
  const run = engine.run();
  const a = join(engine, 'A');
  const b = join(engine, 'B');
  await Promise.all([a.waitFor('assign'), b.waitFor('assign')]);
  update(engine, a, randomVector(N, 71, 0.1));
  t.mock.timers.tick(deadline);
  await inCheckpoint; // round 0 is closed and being written
  const v1 = engine.params.slice();
  update(engine, b, randomVector(N, 72, 0.1), { round: 0, baseVersion: 0 });
  releaseCheckpoint();
  assert.equal(await run, 'done');
  assert.equal(h.rounds[0].late, 1);
  assert.equal(h.rounds[0].accepted, 1);
  assert.deepEqual(engine.params, v1);
});

test(
  'an update with the wrong n, the wrong job or from an unknown donor throws an Error naming it',
  { timeout: 10_000 },
  async (t) => {
    const h = setup(t);
    const { engine } = h;
    const theta = engine.params.slice();
    const run = engine.run();
    const a = join(engine, 'A');
    await a.waitFor('assign');
    assert.throws(
      () => update(engine, a, randomVector(N, 81, 0.1), { n: N + 1 }),
      (e: unknown) => e instanceof Error && e.message.includes(`n=${N + 1}`) && e.message.includes(String(N)),
    );
    assert.throws(
      () => update(engine, a, randomVector(N, 82, 0.1), { jobId: 'other-job' }),
      (e: unknown) => e instanceof Error && e.message.includes('other-job') && e.message.includes('job-1'),
    );
    assert.throws(() => update(engine, new FakeLink('stranger'), randomVector(N, 83, 0.1)), /unknown donor stranger/);
    assert.deepEqual(engine.params, theta);
    assert.equal(h.rounds.length, 0, 'the round still waits for a proper answer');
    const d = update(engine, a, randomVector(N, 84, 0.1));
    assert.equal(await run, 'done');
    assert.equal(h.rounds[0].accepted, 1);
    assertClose(engine.params, outerStep(theta, [d], engine.cfg.train.outerLr), 'weights');
  },
);

test(
  'an update whose values decode to non-finite numbers is rejected, and the engine runs on',
  { timeout: 10_000 },
  async (t) => {
    const h = setup(t, { minDonors: 2, rounds: 3, outerLr: 1 });
    const { engine } = h;
    const run = engine.run();
    const a = join(engine, 'A');
    const b = join(engine, 'B');

    // Round 0: B's first block scale is NaN (the codec refuses it).
    await Promise.all([a.waitFor('assign'), b.waitFor('assign')]);
    let theta = engine.params.slice();
    const nanBody = upCodec(engine).encode(randomVector(N, 91, 0.1));
    new DataView(nanBody.buffer).setFloat32(12, Number.NaN, true); // after the model codec's 12-byte header
    assert.throws(() => update(engine, b, randomVector(N, 91, 0.1), {}, nanBody), /NaN/);
    assert.deepEqual(engine.params, theta, 'a rejected update does not touch the weights');
    let dA = update(engine, a, randomVector(N, 92, 0.1));
    await a.waitFor('assign', 2);
    assert.equal(h.rounds[0].rejected, 1);
    assert.equal(h.rounds[0].accepted, 1);
    assertClose(engine.params, outerStep(theta, [dA], 1), 'round 0 weights (A only)');

    // Round 1: a finite scale so large that 127·scale overflows f32 to Infinity.
    await b.waitFor('assign', 2);
    theta = engine.params.slice();
    const big = new Float32Array(N);
    big[0] = 1; // q = 127
    const infBody = upCodec(engine).encode(big);
    new DataView(infBody.buffer).setFloat32(12, 3.4e38, true);
    assert.throws(() => update(engine, b, big, {}, infBody), /Infinity.*finite/);
    dA = update(engine, a, randomVector(N, 93, 0.1));
    await a.waitFor('assign', 3);
    assert.equal(h.rounds[1].rejected, 1);
    assertClose(engine.params, outerStep(theta, [dA], 1), 'round 1 weights (A only)');
    assert.equal(engine.params.every(Number.isFinite), true);

    // Round 2: both good again; B was not dropped for its bad updates (dropAfterMisses 5).
    await b.waitFor('assign', 3);
    theta = engine.params.slice();
    dA = update(engine, a, randomVector(N, 94, 0.1));
    const dB = update(engine, b, randomVector(N, 95, 0.1));
    assert.equal(await run, 'done');
    assert.equal(h.rounds[2].accepted, 2);
    assert.equal(h.rounds[2].rejected, 0);
    assertClose(engine.params, outerStep(theta, [dA, dB], 1), 'round 2 weights');
  },
);

test(
  'a second update from the same donor, or one from a donor not in the round, is refused',
  { timeout: 10_000 },
  async (t) => {
    const h = setup(t, { minDonors: 2, outerLr: 1 });
    const { engine } = h;
    const theta = engine.params.slice();
    const run = engine.run();
    const a = join(engine, 'A');
    const b = join(engine, 'B');
    await Promise.all([a.waitFor('assign'), b.waitFor('assign')]);
    const dA = update(engine, a, randomVector(N, 101, 0.1));
    assert.throws(() => update(engine, a, randomVector(N, 102, 0.5)), /second update from A/);
    const late = join(engine, 'C', 0); // joined mid-round: not assigned
    assert.throws(() => update(engine, late, randomVector(N, 103, 0.5)), /C .*not assigned round 0/);
    const dB = update(engine, b, randomVector(N, 104, 0.1));
    assert.equal(await run, 'done');
    assert.equal(h.rounds[0].accepted, 2);
    assert.equal(h.rounds[0].rejected, 2);
    assertClose(engine.params, outerStep(theta, [dA, dB], 1), 'each donor counted once');
  },
);

test('a donor removed mid-round ends its wait at once', { timeout: 10_000 }, async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] }); // no tick: only the removal can end the round
  const h = setup(t, { minDonors: 2, roundDeadlineMs: 3_600_000 });
  const { engine } = h;
  const run = engine.run();
  const a = join(engine, 'A');
  const b = join(engine, 'B');
  await Promise.all([a.waitFor('assign'), b.waitFor('assign')]);
  update(engine, a, randomVector(N, 111, 0.1));
  await drain();
  assert.equal(h.rounds.length, 0);
  engine.removeDonor('B', 'connection closed');
  assert.equal(await run, 'done');
  const r = h.rounds[0];
  assert.equal(r.assigned, 2);
  assert.equal(r.accepted, 1);
  assert.equal(r.dropped, 0);
  assert.equal(engine.donors.has('B'), false);
  assert.equal(lastRecord(h, 'B')?.state, 'gone');
  assert.equal(b.of('idle').length, 0, 'a removed donor gets nothing more');
});

test(
  'a donor replaced by a new connection mid-round does not cost the new connection',
  { timeout: 10_000 },
  async (t) => {
    const h = setup(t, { minDonors: 2, dropAfterMisses: 1, rounds: 2 });
    const { engine } = h;
    const run = engine.run();
    const a = join(engine, 'A');
    const b1 = join(engine, 'B');
    await Promise.all([a.waitFor('assign'), b1.waitFor('assign')]);
    update(engine, a, randomVector(N, 121, 0.1));
    const ended = nextRound(engine);
    const b2 = new FakeLink('B'); // the page reloaded
    engine.addDonor(b2);
    const r = await ended; // the old connection's wait ended with its replacement
    assert.equal(r.dropped, 0);
    assert.equal(engine.donors.get('B')?.link, b2);
    assert.equal(b2.closedWith, null);
    assert.equal(lastRecord(h, 'B')?.state, 'joined');
    // The new connection takes part once it is ready.
    engine.onReady('B', -1);
    await b2.waitFor('assign');
    update(engine, a, randomVector(N, 122, 0.1));
    update(engine, b2, randomVector(N, 123, 0.1));
    assert.equal(await run, 'done');
    assert.equal(h.rounds[1].accepted, 2);
  },
);

test('a paused donor is not assigned until it resumes', { timeout: 10_000 }, async (t) => {
  const h = setup(t, { rounds: 2 });
  const { engine } = h;
  const a = join(engine, 'A');
  const p = join(engine, 'P');
  engine.onStatus('P', 'paused');
  const run = engine.run();
  await a.waitFor('assign');
  await drain();
  assert.deepEqual(p.kinds(), ['job'], 'no weights, no assignment');
  engine.onStatus('P', 'training'); // resumes while round 0 runs without it
  update(engine, a, randomVector(N, 131, 0.1));
  const assignP = await p.waitFor('assign');
  assert.equal(assignP.header.round, 1);
  assert.equal(h.rounds[0].assigned, 1);
  update(engine, a, randomVector(N, 132, 0.1));
  update(engine, p, randomVector(N, 133, 0.1));
  assert.equal(await run, 'done');
  assert.equal(h.rounds[1].assigned, 2);
  assert.equal(h.rounds[1].accepted, 2);
});

test(
  'a donor that pauses mid-round still counts for that round and is not assigned the next',
  { timeout: 10_000 },
  async (t) => {
    const h = setup(t, { rounds: 2 });
    const { engine } = h;
    const run = engine.run();
    const a = join(engine, 'A');
    const p = join(engine, 'P');
    await Promise.all([a.waitFor('assign'), p.waitFor('assign')]);
    engine.onStatus('P', 'paused');
    update(engine, p, randomVector(N, 141, 0.1)); // its last work before pausing
    update(engine, a, randomVector(N, 142, 0.1));
    const assignA = await a.waitFor('assign', 2);
    assert.equal(assignA.header.round, 1);
    assert.equal(h.rounds[0].accepted, 2);
    await drain();
    assert.equal(p.of('assign').length, 1);
    assert.equal(engine.donors.get('P')!.state, 'paused');
    update(engine, a, randomVector(N, 143, 0.1));
    assert.equal(await run, 'done');
    assert.equal(h.rounds[1].assigned, 1);
  },
);

test('minDonors: no round starts with fewer ready donors', { timeout: 10_000 }, async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const deadline = 1_000;
  const h = setup(t, { minDonors: 2, dropAfterMisses: 1, rounds: 2, roundDeadlineMs: deadline });
  const { engine } = h;
  const run = engine.run();
  const a = join(engine, 'A');
  await drain();
  assert.equal(a.of('assign').length, 0, 'one ready donor of two');
  const b = new FakeLink('B');
  engine.addDonor(b); // joined, not ready yet
  await drain();
  assert.equal(a.of('assign').length, 0, 'a joined donor is not a ready one');
  engine.onReady('B', -1);
  const [a0, b0] = await Promise.all([a.waitFor('assign'), b.waitFor('assign')]);
  assert.equal(a0.header.round, 0);
  assert.equal(b0.header.round, 0);

  // B stays silent and is dropped: A alone must not start round 1.
  update(engine, a, randomVector(N, 151, 0.1));
  const ended = nextRound(engine);
  t.mock.timers.tick(deadline);
  assert.equal((await ended).dropped, 1);
  await drain();
  assert.equal(a.of('assign').length, 1, 'round 1 waits for a second donor');
  const c = join(engine, 'C');
  const [a1, c1] = await Promise.all([a.waitFor('assign', 2), c.waitFor('assign')]);
  assert.equal(a1.header.round, 1);
  assert.equal(c1.header.round, 1);
  update(engine, a, randomVector(N, 152, 0.1));
  update(engine, c, randomVector(N, 153, 0.1));
  assert.equal(await run, 'done');
  assert.deepEqual(
    h.rounds.map((r) => r.assigned),
    [2, 2],
  );
});

test('stop() while waiting for donors ends run() with "stopped" and sends idle', { timeout: 10_000 }, async (t) => {
  const h = setup(t, { minDonors: 2 });
  const { engine } = h;
  const run = engine.run();
  const a = join(engine, 'A');
  await drain();
  assert.equal(engine.isRunning, true);
  engine.stop();
  assert.equal(await run, 'stopped');
  assert.equal(engine.isRunning, false);
  assert.deepEqual(a.kinds(), ['job', 'idle']);
  assert.equal(a.of('idle')[0].header.reason, 'job stopped');
  assert.equal(h.rounds.length, 0);
});

test(
  'stop() mid-round ends the wait at once without counting misses against the donors',
  { timeout: 10_000 },
  async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] }); // no tick: only stop() can end the round
    const h = setup(t, { minDonors: 2, dropAfterMisses: 1, rounds: 5, roundDeadlineMs: 3_600_000 });
    const { engine } = h;
    const run = engine.run();
    const a = join(engine, 'A');
    const b = join(engine, 'B');
    await Promise.all([a.waitFor('assign'), b.waitFor('assign')]);
    update(engine, a, randomVector(N, 161, 0.1));
    engine.stop();
    assert.equal(await run, 'stopped');
    assert.equal(h.rounds.length, 1, 'the interrupted round is still recorded');
    assert.equal(h.rounds[0].dropped, 0);
    assert.equal(b.closedWith, null);
    assert.equal(engine.donors.get('B')?.misses, 0);
    for (const l of [a, b]) {
      assert.equal(l.kinds().at(-1), 'idle');
      assert.equal(l.of('assign').length, 1, 'no further round');
    }
  },
);

test(
  'the job finishes with "done" after its round budget, also when resumed mid-way',
  { timeout: 10_000 },
  async (t) => {
    const h = setup(t, { rounds: 3 });
    const { engine } = h;
    const run = engine.run();
    const a = join(engine, 'A');
    for (let k = 1; k <= 3; k++) {
      const m = await a.waitFor('assign', k);
      assert.equal(m.header.round, k - 1);
      update(engine, a, randomVector(N, 170 + k, 0.1));
    }
    assert.equal(await run, 'done');
    assert.equal(engine.round, 3);
    assert.equal(engine.version, 3);
    assert.deepEqual(
      h.rounds.map((r) => [r.round, r.version]),
      [
        [0, 1],
        [1, 2],
        [2, 3],
      ],
    );
    assert.deepEqual(
      h.checkpoints.map((c) => c.version),
      [1, 2, 3],
    );
    assert.equal(a.of('assign').length, 3);
    assert.equal(a.kinds().at(-1), 'idle');
    assert.equal(a.of('idle')[0].header.reason, 'job finished');

    // A job resumed at round 2 of 3 (version 7) runs exactly one more round.
    const r = setup(t, { rounds: 3 }, { round: 2, version: 7 });
    const run2 = r.engine.run();
    const b = join(r.engine, 'B', 7);
    const m = await b.waitFor('assign');
    assert.deepEqual(b.kinds(), ['job', 'assign'], 'B holds version 7 already');
    assert.equal(m.header.round, 2);
    assert.equal(m.header.version, 7);
    update(r.engine, b, randomVector(N, 180, 0.1));
    assert.equal(await run2, 'done');
    assert.deepEqual(
      r.rounds.map((x) => [x.round, x.version]),
      [[2, 8]],
    );
  },
);

test(
  'a step that breaks the model is refused: the version stays, no checkpoint, no broadcast, and honest rounds go on',
  { timeout: 10_000 },
  async (t) => {
    // The plain mean, so only the step check stands between the huge update and the weights; outer lr 2
    // so that a step can overflow f32 (round 3).
    const h = setup(t, { minDonors: 2, rounds: 10, outerLr: 2, aggregator: 'mean' });
    const { engine } = h;
    const run = engine.run();
    const a = join(engine, 'A');
    const b = join(engine, 'B');
    const honest = async (count: number, seed: number) => {
      await Promise.all([a.waitFor('assign', count), b.waitFor('assign', count)]);
      const theta = engine.params.slice();
      const d = [update(engine, a, randomVector(N, seed, 0.1)), update(engine, b, randomVector(N, seed + 1, 0.1))];
      await a.waitFor('assign', count + 1);
      assertClose(engine.params, outerStep(theta, d, 2), `round ${count - 1} weights`);
    };

    await honest(1, 10);
    assert.equal(engine.version, 1);
    const theta1 = engine.params.slice();
    const last1 = engine.sync.last;

    // Round 1: B sends ×1000 A's update (validly encoded): the mean would take the loss (mean square,
    // about 0.3 here) to about 10⁴ ≫ 0.3 + ln 4.
    await b.waitFor('assign', 2);
    const dA = randomVector(N, 20, 0.1);
    update(engine, a, dA);
    update(
      engine,
      b,
      dA.map((x) => 1000 * x),
    );
    await a.waitFor('assign', 3);
    const r1 = h.rounds[1];
    assert.match(r1.refused ?? '', /validation loss would rise from 0\.\d+ to \d/);
    assert.equal(r1.version, 1);
    assert.equal(engine.version, 1);
    assert.deepEqual(engine.params, theta1, 'θ_1 is kept');
    assert.equal(engine.sync.last, last1, 'the refused step is not the broadcast');
    assert.equal(r1.valLoss, h.rounds[0].valLoss, "the round records the kept version's loss");
    assert.equal(r1.trainLoss, null);
    assert.ok(h.logs.some((l) => /^round 1 refused: validation loss .*weights stay at v1/.test(l)));
    assert.deepEqual(
      h.checkpoints.map((c) => c.version),
      [1],
    );
    // The per-update checks single B out.
    assert.deepEqual(
      r1.checks.map((c) => c.donorId),
      ['A', 'B'],
    );
    assert.ok(r1.checks[1].normRatio > 500 && r1.flagged === 1);
    assert.ok(h.logs.some((l) => /^round 1: update from B is an outlier \(norm 1\.00e\+3× the median/.test(l)));
    // The next assignment is for v1 again, and donors holding v1 get no step and no weights.
    const assign = (l: FakeLink, i: number) => l.of('assign')[i];
    assert.equal(assign(a, 2).header.version, 1);
    assert.equal(assign(a, 2).body, undefined);
    assert.equal(assign(b, 2).body, undefined);
    assert.equal(a.of('weights').length, 1);

    // Honest rounds go on from θ_1.
    await honest(3, 30);
    assert.equal(engine.version, 2);
    assert.equal(h.rounds[2].refused, null);

    // Round 3: finite updates whose outer step overflows f32 (2 · 3e38): refused as well.
    await b.waitFor('assign', 4);
    const big = new Float32Array(N).fill(3e38);
    update(engine, a, big);
    update(engine, b, big);
    // A refused round does not count: the same number runs again (the job is stopped there).
    await a.waitFor('assign', 5);
    engine.stop();
    assert.equal(await run, 'stopped');
    assert.deepEqual(
      h.rounds.map((r) => [r.round, r.counted]),
      [
        [0, true],
        [1, false],
        [1, true],
        [2, false],
        [2, false], // the rerun, ended by stop() with nothing accepted
      ],
    );
    // The f32 broadcast cannot encode the infinite step; commit leaves the state as it was.
    assert.match(h.rounds[3].refused ?? '', /^the step could not be taken: .* is Infinity/);
    assert.equal(engine.version, 2);
    assert.deepEqual(
      h.checkpoints.map((c) => c.version),
      [1, 2],
    );
    for (const c of h.checkpoints) assert.ok(c.params.every(Number.isFinite), `checkpoint v${c.version} is finite`);
  },
);

test(
  'the default clipped-mean takes a round with a ×1000 donor among three honest ones, moving θ by at most the stated bound',
  { timeout: 10_000 },
  async (t) => {
    const h = setup(t, { minDonors: 4, rounds: 1, outerLr: 1, aggregator: 'clipped-mean' });
    const { engine } = h;
    const run = engine.run();
    const links = ['A', 'B', 'C', 'D'].map((id) => join(engine, id));
    await Promise.all(links.map((l) => l.waitFor('assign')));
    const theta = engine.params.slice();
    const honest = links.slice(0, 3).map((l, i) => update(engine, l, randomVector(N, 40 + i, 0.1)));
    update(
      engine,
      links[3],
      randomVector(N, 40, 0.1).map((x) => 1000 * x),
    );
    assert.equal(await run, 'done');
    const r = h.rounds[0];
    assert.equal(r.refused, null);
    assert.equal(engine.version, 1);
    assert.deepEqual(
      r.checks.map((c) => c.clipped),
      [false, false, false, true],
    );
    // g = (Σ honest + clipped D)/4 with ‖clipped D‖ ≤ 2·m, so ‖g − honest mean‖ ≤ (‖honest mean‖ + 2m)/4.
    const hMean = outerStep(new Float32Array(N), honest, 1).map((x) => -x);
    const g = theta.map((x, i) => x - engine.params[i]);
    const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((a, x) => a + x * x, 0));
    const m = [...r.checks.map((c) => c.norm)].sort((a, b) => a - b)[1];
    const bound = (norm(hMean) + 2 * m) / 4;
    assert.ok(norm(g.map((x, i) => x - hMean[i])) <= bound * (1 + 1e-4) + 1e-6, `${bound}`);
    assert.ok(norm(g) < 2 * norm(hMean) + 2 * m, 'nowhere near the ×1000 update');
  },
);

test(
  'peers that say ready and vanish burn no round: the round runs again under its number',
  { timeout: 10_000 },
  async (t) => {
    const h = setup(t, { minDonors: 1, rounds: 1 });
    const { engine } = h;
    const run = engine.run();
    // Three Sybils, one after another: each is assigned round 0 and disconnects before answering.
    for (const id of ['S1', 'S2', 'S3']) {
      const s = join(engine, id);
      await s.waitFor('assign');
      engine.removeDonor(id, 'connection closed');
      await drain();
    }
    assert.deepEqual(
      h.rounds.map((r) => [r.round, r.accepted, r.counted]),
      [
        [0, 0, false],
        [0, 0, false],
        [0, 0, false],
      ],
    );
    assert.equal(engine.round, 0, 'no round of the budget was spent');
    // An honest donor then completes round 0, which ends the one-round job.
    const a = join(engine, 'A');
    await a.waitFor('assign');
    assert.equal(a.of('assign')[0].header.round, 0);
    update(engine, a, randomVector(N, 7, 0.1));
    assert.equal(await run, 'done');
    const last = h.rounds[h.rounds.length - 1];
    assert.deepEqual([last.round, last.counted], [0, true]);
    assert.equal(engine.version, 1);
  },
);
