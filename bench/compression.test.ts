import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simulateArm, type SimArm, type SimJob, type SimResult } from './compression-sim';
import { aggregate, bestArm, roundSeconds, secondsTo, formatTable, plotSvg, LINKS } from './compression-report';
import { ARMS, loadPartial, parseCustomArms, runCompressionBench } from './compression';
import { testDevice } from '../src/gpu/gpu.test-helper';
import { modelInit, modelLoss, modelParamCount, type ModelConfig } from '../src/model/model';
import { jobCodec } from '../src/sync/job-codec';
import { parseCodecSpec } from '../src/compress/codec-spec';
import { wireSize } from '../src/protocol/wire';
import { modelParamSpecs } from '../src/model/model';
import { Rng } from '../src/util/rng';
import { parseJobSpec } from '../coordinator/job-spec';

const MODEL: ModelConfig = { type: 'mlp', vocab: 7, context: 3, embed: 5, hidden: 11 };

function tokens(n: number, seed: number): Int32Array {
  // A stream with structure (each token one of two successors of the last) so training lowers the loss.
  const rng = new Rng(seed);
  const t = new Int32Array(n);
  for (let i = 1; i < n; i++) t[i] = (t[i - 1] * 3 + 1 + rng.int(2)) % MODEL.vocab;
  return t;
}

function valBatch() {
  const t = tokens(400, 99);
  const count = 64;
  const toks = new Int32Array(count * MODEL.context);
  const targets = new Int32Array(count);
  for (let b = 0; b < count; b++) {
    toks.set(t.subarray(b * 5, b * 5 + MODEL.context), b * MODEL.context);
    targets[b] = t[b * 5 + MODEL.context];
  }
  return { tokens: toks, targets };
}

const JOB: SimJob = {
  jobId: 'sim-test',
  model: MODEL,
  train: parseJobSpec({ train: { batch: 8, lr: 0.01, gradClip: 0 } }).train,
  seed: 3,
  stepsPerDonor: 12,
  evalEvery: 4,
};

test('every arm parses and names a codec; the baseline is dense f32 at H = 1', () => {
  assert.equal(ARMS[0].codec, 'f32');
  assert.equal(ARMS[0].localSteps, 1);
  for (const a of ARMS) {
    parseCodecSpec(a.codec);
    parseCodecSpec(a.downCodec);
    assert.ok(
      JOB.stepsPerDonor > 0 && 600 % a.localSteps === 0 && 50 % a.localSteps === 0,
      `${a.name}: H must divide 50`,
    );
  }
});

test('simulateArm: donors stay bit-identical to the coordinator, bytes are the wire sizes, loss falls', async () => {
  const device = await testDevice();
  const data = { init: modelInit(MODEL, 1), shards: [tokens(300, 1), tokens(300, 2), tokens(300, 3)], val: valBatch() };
  const n = modelParamCount(MODEL);
  const before = modelLoss(MODEL, data.init, data.val);
  const arms: SimArm[] = [
    { name: 'dense', codec: 'f32', downCodec: 'f32', localSteps: 1, outerLr: 1, outerMomentum: 0 },
    { name: 'q4 H4', codec: 'q4', downCodec: 'q8', localSteps: 4, outerLr: 0.7, outerMomentum: 0.9 },
  ];
  for (const arm of arms) {
    const r = await simulateArm(device, JOB, arm, data);
    assert.equal(r.identical, true, `${arm.name}: donors differ from the coordinator`);
    assert.equal(r.rounds, JOB.stepsPerDonor / arm.localSteps);
    assert.deepEqual(
      r.curve.map((p) => p.step),
      [4, 8, 12],
    );
    assert.ok(r.finalValLoss < before, `${arm.name}: validation loss ${r.finalValLoss} did not fall below ${before}`);
    // Up: one update message per round whose body is exactly the codec's size (both codecs are fixed-size).
    const layout = modelParamSpecs(MODEL);
    const body = new Uint8Array(jobCodec(arm.codec, layout).encodedBytes(n));
    const header = {
      jobId: JOB.jobId,
      round: 0,
      baseVersion: 0,
      steps: arm.localSteps,
      loss: 1.5,
      tokens: 1,
      codec: jobCodec(arm.codec, layout).name,
      n,
      computeMs: 1,
    };
    const upMsg = wireSize({ kind: 'update', header, body });
    // The header's numbers vary in length from round to round (loss, computeMs, round), so allow their digits.
    assert.ok(
      Math.abs(r.upBytesPerRound - upMsg) < 48,
      `${arm.name}: ${r.upBytesPerRound} B up per round vs a ${upMsg}-byte update`,
    );
    assert.ok(
      r.upBytesPerRound >= body.length && r.downBytesPerRound >= jobCodec(arm.downCodec, layout).encodedBytes(n),
    );
    assert.equal(r.curve.at(-1)!.upBytes, r.upBytesPerRound * r.rounds);
  }
});

function fakeRun(
  name: string,
  H: number,
  seed: number,
  up: number,
  down: number,
  losses: number[],
  codec = 'f32',
  stepMs = 10,
): SimResult {
  const arm: SimArm = { name, codec, downCodec: codec, localSteps: H, outerLr: 1, outerMomentum: 0 };
  const curve = losses.map((valLoss, k) => ({
    step: (k + 1) * 50,
    valLoss,
    upBytes: ((k + 1) * 50 * up) / H,
    downBytes: ((k + 1) * 50 * down) / H,
  }));
  return {
    arm,
    seed,
    donors: 4,
    rounds: (losses.length * 50) / H,
    tokensPerDonor: 1,
    curve,
    finalValLoss: losses.at(-1)!,
    finalTrainLoss: 0,
    upBytesPerRound: up,
    downBytesPerRound: down,
    setupBytes: 0,
    stepMs,
    encodeMs: 1,
    commitMs: 2,
    identical: true,
  };
}

test('aggregate: ratio per step against dense, gap, time to dense × 1.02 on each link, the best arm within 2%', () => {
  const runs = [1, 2].flatMap((seed) => [
    fakeRun('dense', 1, seed, 1000, 1000, [3, 2.5, 2.0 + seed / 100]),
    fakeRun('small', 10, seed, 100, 100, [3.2, 2.6, 2.02 + seed / 100], 'f32', 4 + seed), // 5 and 6 ms: median 5.5
    fakeRun('tiny but bad', 50, seed, 10, 10, [3.5, 3.4, 3.3]),
  ]);
  const rows = aggregate(runs, 'dense');
  const [dense, small, bad] = rows;
  assert.equal(dense.ratio, 1);
  assert.equal(small.ratio, 100); // 2000 B/step vs 20 B/step
  assert.equal(bad.ratio, 5000); // 20 B per 50-step round
  assert.ok(Math.abs(small.gapPct - (100 * 0.02) / 2.015) < 1e-9);
  // Dense reaches its own final × 1.02 only at its last validation (step 150 = 150 rounds).
  const l = LINKS[0];
  const perRound = roundSeconds(runs[0], l, 10);
  assert.ok(
    Math.abs(
      perRound - ((10 + 1 + 2 + l.rttMs) / 1000 + (8 * 1000) / (l.upMbps * 1e6) + (8 * 1000) / (l.downMbps * 1e6)),
    ) < 1e-12,
  );
  assert.equal(secondsTo(runs[0], 2.01 * 1.02, l, 10), 150 * perRound);
  // Each arm is timed with its own compute per step.
  assert.deepEqual([dense.stepMs, small.stepMs], [10, 5.5]);
  const smallRuns = runs.filter((r) => r.arm.name === 'small');
  const want = smallRuns.map((r) =>
    secondsTo(r, runs.find((b) => b.arm.name === 'dense' && b.seed === r.seed)!.finalValLoss * 1.02, l, 5.5)!,
  );
  assert.ok(Math.abs(small.secondsToTarget[l.name]! - (want[0] + want[1]) / 2) < 1e-12);
  assert.equal(bad.secondsToTarget[l.name], null);
  assert.equal(bad.speedup[l.name], null);
  assert.ok(small.speedup[l.name]! > 1);
  assert.equal(bestArm(rows)!.name, 'small');
  assert.match(formatTable(rows), /\| small \| 10 \| `f32` \| `f32` \| 10 B \| 10 B \| 100× \| 5\.5 \|/);
  assert.match(plotSvg(runs, 't'), /<svg[^>]*>[\s\S]*small[\s\S]*<\/svg>/);
});

test("--custom arms: UP[>DOWN]@H with a job's default outer optimizer unless given, and clear errors", () => {
  const [a, b, c] = parseCustomArms('topk:0.02/q2>topk:0.04/q2@10; q4@10,0.5,0.8,0.9 ;f16@1');
  assert.deepEqual(
    { codec: a.codec, down: a.downCodec, H: a.localSteps, lr: a.outerLr, m: a.outerMomentum, name: a.name },
    { codec: 'topk:0.02/q2', down: 'topk:0.04/q2', H: 10, lr: 1, m: 0, name: 'topk:0.02/q2>topk:0.04/q2 H10 lr1 m0' },
  );
  assert.deepEqual([b.codec, b.downCodec, b.outerLr, b.outerMomentum, b.errorDecay], ['q4', 'q4', 0.5, 0.8, 0.9]);
  assert.deepEqual([c.localSteps, c.outerLr, c.outerMomentum], [1, 1, 0]);
  assert.equal(parseCustomArms('q4@10')[0].outerLr, 0.7);
  assert.throws(() => parseCustomArms('q4'), /custom arm "q4" is not UP\[>DOWN\]@H/);
});

test('--resume keeps saved runs of the same job for the arms and seeds asked for, and refuses another job', () => {
  const dir = mkdtempSync(join(tmpdir(), 'starling-resume-'));
  const path = join(dir, 'c.json.partial.json');
  const logs: string[] = [];
  const log = (l: string) => logs.push(l);
  const [dense, f16, q8] = ARMS;
  const key = { spec: { name: 'j' }, steps: 600 };
  try {
    assert.deepEqual(loadPartial(path, key, ARMS, [1], log), []);
    assert.match(logs[0], /no .*c\.json\.partial\.json, starting afresh/);
    const runs = [fakeRun('x', 1, 1, 1, 1, [1]), fakeRun('y', 1, 2, 1, 1, [1]), fakeRun('z', 1, 1, 1, 1, [1])];
    runs[0].arm = dense;
    runs[1].arm = f16;
    runs[2].arm = { ...q8, outerLr: 0.5 }; // same name, other settings: not the arm asked for
    writeFileSync(path, JSON.stringify({ bench: 'compression-partial', key, runs }));
    const kept = loadPartial(path, key, [dense, f16, q8], [1], log);
    assert.deepEqual(
      kept.map((r) => [r.arm.name, r.seed]),
      [['dense f32', 1]],
    );
    assert.match(logs[1], /kept 1 of 3 saved runs/);
    assert.equal(loadPartial(path, key, [dense, f16], [1, 2], log).length, 2);
    assert.throws(
      () => loadPartial(path, { ...key, steps: 500 }, ARMS, [1], log),
      /trained a different job .*delete it or drop --resume/,
    );
    // A finished results file: its key comes from its job and its first validation's step.
    const job = { spec: key.spec, model: { type: 'mlp' }, donors: 4, stepsPerDonor: 600, seeds: [1] };
    const rkey = { spec: key.spec, model: job.model, donors: 4, steps: 600, evalEvery: 50 };
    writeFileSync(path, JSON.stringify({ bench: 'compression', job, runs }));
    assert.deepEqual(
      loadPartial(path, rkey, [dense, f16], [1, 2], log).map((r) => r.arm.name),
      ['dense f32', 'f16'],
    );
    assert.throws(() => loadPartial(path, { ...rkey, evalEvery: 100 }, ARMS, [1], log), /trained a different job/);
    writeFileSync(path, JSON.stringify({ bench: 'compression' }));
    assert.throws(
      () => loadPartial(path, key, ARMS, [1], log),
      /is neither a saved partial compression run nor a compression results file/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a run without --resume refuses to overwrite the saved runs of an interrupted run, before it loads anything', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'starling-partial-'));
  const out = join(dir, 'c.json');
  writeFileSync(`${out}.partial.json`, JSON.stringify({ bench: 'compression-partial', key: {}, runs: [] }));
  const errors: string[] = [];
  const orig = console.error;
  console.error = (l: string) => errors.push(l);
  try {
    assert.equal(await runCompressionBench({ quick: true, out }, 'test'), 2);
  } finally {
    console.error = orig;
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(errors.length, 1);
  assert.match(
    errors[0],
    /c\.json\.partial\.json holds the runs of an interrupted run: pass --resume to keep them, or delete it/,
  );
});
