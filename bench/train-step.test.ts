// Pure parts of the train-step benchmark (agreement check, rows, tables, docs section, model list,
// batches) and its TF.js side, run here on TF.js's CPU backend against the float64 CPU model + AdamWCpu.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { mlpForwardBackward } from '../src/model/mlp-cpu';
import { mlpInit, mlpParamCount, type MlpConfig } from '../src/model/mlp-spec';
import { AdamWCpu } from '../src/optim/adamw-cpu';
import type { AdamWHyper } from '../src/optim/adamw';
import { Rng } from '../src/util/rng';
import { sectionEnd, sectionStart, upsertSection } from './report';
import { gptInit, gptParamCount, type GptConfig } from '../src/model/gpt-spec';
import { gptForwardBackward } from '../src/model/gpt-cpu';
import {
  BENCH_HYPER,
  makeBatches,
  selectModels,
  tokensPerStep,
  TRAIN_STEP_MODELS,
  type TrainStepModel,
} from './train-step-models';
import {
  checkTrainStep,
  formatTrainStepTable,
  LATER_REL_TOL,
  STEP0_REL_TOL,
  tokensPerSec,
  trainStepMarkdownTable,
  trainStepRow,
  trainStepSection,
} from './train-step-report';
import { TfAdamW, tfMlpSide, tfGptSide } from './train-step-tfjs';
import type { TrainStepModelResult, TrainStepResults } from './train-step-types';

function result(over: Partial<TrainStepModelResult> = {}): TrainStepModelResult {
  return {
    id: 'mlp-demo',
    kind: 'mlp',
    what: 'MLP demo',
    paramCount: 25_792,
    tokensPerStep: 64,
    stepsPerSample: 6,
    oursSamplesMs: [90, 80, 100],
    theirsSamplesMs: [400, 300, 350],
    oursCheckLosses: [4.1786, 4.1642, 4.1451],
    theirsCheckLosses: [4.1786, 4.1642, 4.1451],
    cpuLoss0: 4.17860001,
    paramMaxAbsDiff: 1e-7,
    oursFirstStepMs: 60,
    theirsFirstStepMs: 3000,
    tfTensorsAfterWarmup: 20,
    tfTensorsAfterTiming: 20,
    theirsKernelsPerStep: 210,
    oursImpl: 'ours',
    theirsImpl: 'theirs',
    ...over,
  };
}

describe('train-step agreement check', () => {
  it('identical losses pass; tolerances scale with max(1, |loss|)', () => {
    const c = checkTrainStep(result());
    assert.equal(c.valid, true);
    assert.equal(c.oursOk && c.theirsOk, true);
    assert.ok(Math.abs(c.step0Tol - STEP0_REL_TOL * 4.17860001) < 1e-15);
    assert.ok(Math.abs(c.laterTol - LATER_REL_TOL * 4.17860001) < 1e-15);
    const small = checkTrainStep(result({ oursCheckLosses: [0.1], theirsCheckLosses: [0.1], cpuLoss0: 0.1 }));
    assert.equal(small.step0Tol, STEP0_REL_TOL);
    assert.equal(small.laterDiff, 0);
  });

  it('a float32-sized step-0 difference passes, a wrong model does not', () => {
    const near = checkTrainStep(result({ theirsCheckLosses: [4.1786 + 2e-6, 4.1642, 4.1451] }));
    assert.equal(near.valid, true);
    // Zeroed logits give ln V: off by ~2e-2 from a trained-from-init loss.
    const broken = checkTrainStep(result({ theirsCheckLosses: [Math.log(64), 4.1642, 4.1451] }));
    assert.equal(broken.valid, false);
    assert.equal(broken.oursOk, true, 'the CPU reference clears ours');
    assert.equal(broken.theirsOk, false);
  });

  it('a disagreement after the updates fails both sides: the CPU reference only covers step 0', () => {
    const c = checkTrainStep(result({ theirsCheckLosses: [4.1786, 4.1642, 4.16] }));
    assert.equal(c.valid, false);
    assert.equal(c.oursOk, false);
    assert.equal(c.theirsOk, false);
    assert.ok(Math.abs(c.laterDiff - (4.16 - 4.1451)) < 1e-12);
  });

  it('NaN never passes, and without a CPU reference a disagreement fails both', () => {
    const nan = checkTrainStep(result({ oursCheckLosses: [NaN, NaN, NaN] }));
    assert.equal(nan.valid, false);
    assert.equal(nan.oursOk, false);
    assert.equal(nan.theirsOk, true);
    assert.equal(nan.step0Diff, Infinity);
    const later = checkTrainStep(result({ theirsCheckLosses: [4.1786, NaN, 4.1451] }));
    assert.equal(later.valid, false);
    assert.equal(later.theirsOk, false);
    const noCpu = checkTrainStep(result({ cpuLoss0: null, theirsCheckLosses: [4.2, 4.1642, 4.1451] }));
    assert.equal(noCpu.oursCpuDiff, null);
    assert.equal(noCpu.oursOk || noCpu.theirsOk, false);
    assert.equal(checkTrainStep(result({ cpuLoss0: null })).valid, true);
  });

  it('both sides off the CPU reference the same way fail', () => {
    const c = checkTrainStep(result({ cpuLoss0: 4.0 }));
    assert.equal(c.valid, false);
    assert.equal(c.oursOk || c.theirsOk, false);
  });

  it('needs matching, nonempty loss lists', () => {
    assert.throws(() => checkTrainStep(result({ oursCheckLosses: [], theirsCheckLosses: [] })), RangeError);
    assert.throws(() => checkTrainStep(result({ theirsCheckLosses: [4.1786] })), RangeError);
  });
});

describe('train-step rows and rendering', () => {
  it('row: medians, theirs/ours ratio, tokens per second, leak count', () => {
    const r = trainStepRow(result({ tfTensorsAfterTiming: 23 }));
    assert.equal(r.ours, 90);
    assert.equal(r.theirs, 350);
    assert.ok(Math.abs((r.ratio ?? 0) - 350 / 90) < 1e-12);
    assert.ok(Math.abs((r.oursTokensPerSec ?? 0) - (64 * 1000) / 90) < 1e-9);
    assert.ok(Math.abs((r.theirsTokensPerSec ?? 0) - (64 * 1000) / 350) < 1e-9);
    assert.equal(r.repeats, 3);
    assert.equal(r.tfTensorLeak, 3);
    assert.equal(r.oursLoss0, 4.1786);
  });

  it('a side that fails the check posts no time, and the ratio is blank', () => {
    const r = trainStepRow(result({ theirsCheckLosses: [Math.log(64), 4.1642, 4.1451] }));
    assert.equal(r.ours, 90);
    assert.equal(r.theirs, null);
    assert.equal(r.ratio, null);
    assert.equal(r.theirsTokensPerSec, null);
    const table = formatTrainStepTable([r]);
    assert.match(table, /FAIL/);
    assert.match(table, /✗/);
    assert.match(trainStepMarkdownTable([r]), /\| — \|/);
  });

  it('tokens per second', () => {
    assert.equal(tokensPerSec(64, 1000), 64);
    assert.equal(tokensPerSec(256, 500), 512);
    assert.throws(() => tokensPerSec(64, 0), RangeError);
  });

  it('tables line up and escape pipes in Markdown', () => {
    const rows = [
      trainStepRow(result()),
      trainStepRow(
        result({
          what: 'MLP large',
          tokensPerStep: 256,
          oursSamplesMs: [1400],
          theirsSamplesMs: [3500],
          oursCheckLosses: [4.1627],
          theirsCheckLosses: [4.1627],
          cpuLoss0: 4.1627,
        }),
      ),
    ];
    const lines = formatTrainStepTable(rows).split('\n');
    assert.equal(lines.length, 4);
    assert.equal(new Set(lines.map((l) => l.length)).size, 1, 'fixed width');
    assert.match(lines[2], /^MLP demo\s+90\.0\s+350\s+3\.89×\s+711\s+183/);
    const md = trainStepMarkdownTable(rows);
    assert.match(md, /\| TF\.js\/ours \|/);
    assert.match(md, /\\\|Δloss\\\| 0 \/ later/);
    assert.match(md, /\| 2\.50× \| 183 \| 73\.1 \|/);
  });

  it('the docs section goes in its own markers and leaves the matmul section alone', () => {
    const res: TrainStepResults = {
      bench: 'train-step',
      date: '2026-11-22T00:00:00.000Z',
      device: {
        adapter: {
          vendor: 'google',
          architecture: 'swiftshader',
          device: '',
          description: '',
          isFallbackAdapter: true,
          summary: 'google swiftshader (software fallback)',
        },
        userAgent: 'UA',
        backend: 'SwiftShader',
        tfjsVersion: '4.22.0',
        tfjsBackend: 'webgpu',
        chromium: '156',
        host: { platform: 'Linux', cpu: 'Xeon', cores: 2, memGiB: 24, node: 'v20' },
      },
      tree: { commit: 'abc123', changed: ['src/gpu/kernels/matmul.ts'] },
      hp: BENCH_HYPER,
      oursImpl: 'MlpTrainer.step',
      theirsImpl: 'tf minimize',
      method: 'M.',
      command: 'npm run bench -- train-step',
      rows: [trainStepRow(result())],
      raw: [result()],
    };
    const section = trainStepSection(res);
    assert.match(section, /^## Training step/);
    assert.match(section, /npm run bench -- train-step\n```/);
    assert.match(section, /SwiftShader runs WebGPU on the CPU/);
    assert.match(section, /weight decay 0\.01/);
    assert.match(section, /commit `abc123` with uncommitted changes to 1 file\(s\)/);
    assert.match(trainStepSection({ ...res, tree: { commit: 'abc123', changed: [] } }), /- Code: commit `abc123`\n/);
    assert.doesNotMatch(section, /failed the agreement check/);
    const matmul = `${sectionStart('matmul')}\nmatmul body\n${sectionEnd('matmul')}`;
    const doc = `# Benchmarks\n\nintro\n\n${matmul}\n`;
    const once = upsertSection(doc, 'train-step', section);
    assert.ok(once.includes(matmul));
    assert.ok(once.indexOf(matmul) < once.indexOf(sectionStart('train-step')));
    assert.equal(upsertSection(once, 'train-step', section), once, 'rerunning replaces in place');
    const failing = trainStepSection({ ...res, rows: [trainStepRow(result({ theirsCheckLosses: [1, 1, 1] }))] });
    assert.match(failing, /1 model\(s\) failed the agreement check/);
  });
});

describe('train-step models and batches', () => {
  it('the default entries: the MLP demo job shape first, a larger MLP, then the GPT and its low-rank twin', () => {
    const [demo, large, gpt, gptLow] = TRAIN_STEP_MODELS;
    assert.ok(demo.kind === 'mlp' && large.kind === 'mlp' && gpt.kind === 'gpt' && gptLow.kind === 'gpt');
    assert.deepEqual({ ...demo.cfg, batch: demo.batch }, { vocab: 64, context: 8, embed: 16, hidden: 128, batch: 64 });
    assert.ok(large.cfg.hidden > demo.cfg.hidden && large.batch > demo.batch);
    // The GPT of issue 3's training target: 2 layers, 2 heads, width 64, context 64, 16 sequences.
    assert.deepEqual([gpt.cfg.layers, gpt.cfg.heads, gpt.cfg.width, gpt.cfg.context, gpt.batch], [2, 2, 64, 64, 16]);
    assert.equal(tokensPerStep(gpt), 16 * 64);
    assert.ok(gptLow.cfg.lowRank && gptLow.cfg.lowRank.rank <= gptLow.cfg.width / 4);
    assert.equal(new Set(TRAIN_STEP_MODELS.map((m) => m.id)).size, TRAIN_STEP_MODELS.length, 'ids are unique');
    assert.equal(tokensPerStep(demo), 64);
  });

  it('selectModels keeps the order asked for and names unknown ids', () => {
    assert.deepEqual(
      selectModels(undefined).map((m) => m.id),
      TRAIN_STEP_MODELS.map((m) => m.id),
    );
    assert.deepEqual(
      selectModels(['gpt-small', 'mlp-demo']).map((m) => m.id),
      ['gpt-small', 'mlp-demo'],
    );
    assert.throws(
      () => selectModels(['gpt-tiny']),
      /unknown model "gpt-tiny" \(known: mlp-demo, mlp-large, gpt-small, gpt-lowrank\)/,
    );
    assert.throws(() => selectModels([]), RangeError);
  });

  const mlp = (batch: number): TrainStepModel => ({
    kind: 'mlp',
    id: 'm',
    what: 'm',
    cfg: { vocab: 64, context: 8, embed: 4, hidden: 4 },
    batch,
  });

  it('batches are reproducible, in range, and follow the stream rule', () => {
    const a = makeBatches(mlp(32), 3, 5);
    const b = makeBatches(mlp(32), 3, 5);
    assert.equal(a.length, 3);
    assert.deepEqual(a, b);
    assert.notDeepEqual(makeBatches(mlp(32), 3, 6)[0].tokens, a[0].tokens);
    for (const { tokens, targets } of a) {
      assert.equal(tokens.length, 32 * 8);
      assert.equal(targets.length, 32);
      for (const t of [...tokens, ...targets]) assert.ok(t >= 0 && t < 64);
      for (let r = 0; r < 32; r++) {
        const last = tokens[r * 8 + 7];
        const d = (targets[r] - ((last * 7 + 3) % 64) + 64) % 64;
        assert.ok(d < 4, `row ${r}: target ${targets[r]} is not a successor of ${last}`);
      }
    }
  });

  it('GPT batches: sequences of the context whose targets are the tokens shifted by one', () => {
    const m: TrainStepModel = {
      kind: 'gpt',
      id: 'g',
      what: 'g',
      cfg: { vocab: 64, context: 9, layers: 1, heads: 1, width: 4, tiedEmbeddings: true },
      batch: 5,
    };
    const [{ tokens, targets }] = makeBatches(m, 1, 5);
    assert.equal(tokens.length, 45);
    assert.equal(targets.length, 45);
    for (let r = 0; r < 5; r++) {
      for (let t = 0; t < 9; t++) {
        if (t < 8) assert.equal(targets[r * 9 + t], tokens[r * 9 + t + 1], `row ${r} position ${t}`);
        const d = (targets[r * 9 + t] - ((tokens[r * 9 + t] * 7 + 3) % 64) + 64) % 64;
        assert.ok(d < 4, `row ${r} position ${t}: target is not a successor`);
      }
    }
  });
});

describe('train-step TF.js side (CPU backend) vs the float64 CPU model and AdamWCpu', () => {
  it('TfAdamW follows AdamWCpu, weight decay included', async () => {
    await tf.setBackend('cpu');
    const n = 41;
    const rng = new Rng(3);
    const hp: AdamWHyper = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };
    const p0 = rng.uniformArray(n);
    const ref = Float32Array.from(p0);
    const cpu = new AdamWCpu(n);
    const v = tf.variable(tf.tensor1d(p0), true, 'train-step-test/adamw');
    const opt = new TfAdamW(hp, new Map([[v.name, v]]));
    for (let t = 0; t < 5; t++) {
      const g = rng.uniformArray(n);
      cpu.step(ref, g, hp);
      const gt = tf.tensor1d(g);
      opt.applyGradients({ [v.name]: gt });
      gt.dispose();
    }
    const got = await v.data();
    // f32 arithmetic on weights that moved ~5·lr: a few ulps of |p| ≤ 1.
    for (let i = 0; i < n; i++)
      assert.ok(Math.abs(got[i] - ref[i]) <= 1e-6, `param ${i}: TF.js ${got[i]} vs CPU ${ref[i]}`);
    opt.dispose();
    v.dispose();
  });

  it('three MLP steps: losses and weights match the float64 model + AdamWCpu; no tensor leaks', async () => {
    await tf.setBackend('cpu');
    const cfg: MlpConfig = { vocab: 11, context: 3, embed: 5, hidden: 13 };
    const batch = 9;
    const hp = BENCH_HYPER;
    const params = mlpInit(cfg, 7);
    // Nonzero biases, so their gradients and layout are exercised too.
    const rng = new Rng(8);
    for (let i = 0; i < params.length; i++) if (params[i] === 0) params[i] = 0.1 * (2 * rng.next() - 1);
    const side = tfMlpSide(cfg, batch, params, hp);
    const ref = Float32Array.from(params);
    const adam = new AdamWCpu(mlpParamCount(cfg));
    const batches = makeBatches({ kind: 'mlp', id: 't', what: 't', cfg, batch }, 3, 9);
    let tensors = 0;
    for (let s = 0; s < 3; s++) {
      const { tokens, targets } = batches[s];
      const { loss: want, grads } = mlpForwardBackward(cfg, ref, tokens, targets);
      adam.step(ref, grads, hp);
      const got = await side.step(batches[s]);
      assert.ok(Math.abs(got - want) <= 1e-5 * Math.max(1, want), `step ${s}: TF.js loss ${got} vs CPU ${want}`);
      if (s === 1) tensors = tf.memory().numTensors;
      if (s === 2) assert.equal(tf.memory().numTensors, tensors, 'a TF.js step leaks tensors');
    }
    const got = await side.params();
    assert.equal(got.length, ref.length);
    let worst = 0;
    for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(got[i] - ref[i]));
    // AdamW moves each weight ~lr per step whatever the gradient's size; f32 vs f64 gradients agree to ~1e-6
    // relative, so the weights agree far below lr = 3e-3 (a wrong gradient or layout is off by ~lr).
    assert.ok(worst <= 1e-5, `max |θ_TF.js − θ_CPU| = ${worst}`);
    side.destroy();
  });

  it('two GPT steps: losses and weights match the float64 GPT + AdamWCpu; no tensor leaks', async () => {
    await tf.setBackend('cpu');
    const cfg: GptConfig = {
      vocab: 13,
      context: 6,
      layers: 2,
      heads: 2,
      width: 8,
      tiedEmbeddings: true,
      lowRank: { rank: 2, layers: 'all' },
    };
    const batch = 3;
    const hp = BENCH_HYPER;
    const params = gptInit(cfg, 4);
    const side = tfGptSide(cfg, batch, params, hp);
    const ref = Float32Array.from(params);
    const adam = new AdamWCpu(gptParamCount(cfg));
    const batches = makeBatches({ kind: 'gpt', id: 't', what: 't', cfg, batch }, 3, 9);
    let tensors = 0;
    for (let s = 0; s < 3; s++) {
      const { tokens, targets } = batches[s];
      const { loss: want, grads } = gptForwardBackward(cfg, ref, tokens, targets, batch);
      adam.step(ref, grads, hp);
      const got = await side.step(batches[s]);
      assert.ok(Math.abs(got - want) <= 1e-5 * Math.max(1, want), `step ${s}: TF.js loss ${got} vs CPU ${want}`);
      if (s === 1) tensors = tf.memory().numTensors;
      if (s === 2) assert.equal(tf.memory().numTensors, tensors, 'a TF.js step leaks tensors');
    }
    const got = await side.params();
    let worst = 0;
    for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(got[i] - ref[i]));
    // As for the MLP: a wrong gradient or layout would be off by ~lr = 3e-3.
    assert.ok(worst <= 1e-4, `max |θ_TF.js − θ_CPU| = ${worst}`);
    side.destroy();
  });
});

// Keeps the model union honest: every entry has a tokensPerStep.
const _exhaustive: (m: TrainStepModel) => number = tokensPerStep;
void _exhaustive;
