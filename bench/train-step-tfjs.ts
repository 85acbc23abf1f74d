// The TF.js side of the train-step benchmark: the MLP language model built from tf ops (autodiff does
// the backward) and AdamW as a tf.Optimizer, so that a step is `optimizer.minimize(f, true)` plus
// `await loss.data()`. Backend-agnostic: the bench page runs it on TF.js's WebGPU backend, and
// bench/train-step.test.ts checks it on TF.js's CPU backend against the float64 CPU model and AdamWCpu.
import * as tf from '@tensorflow/tfjs';
import type { Batch } from '../src/data/split';
import { mlpParamSpecs, type MlpConfig } from '../src/model/mlp-spec';
import { gptParamSpecs, type GptConfig } from '../src/model/gpt-spec';
import { gptTfLossFn } from '../src/model/gpt-tfjs.test-helper';
import { adamwStepConstants, type AdamWHyper } from '../src/optim/adamw';
import type { StepSide } from './train-step-types';

/** tf.Optimizer.applyGradients' list form (the type is not re-exported by @tensorflow/tfjs). */
type NamedTensor = { name: string; tensor: tf.Tensor };

// TF.js AdamW: PyTorch's torch.optim.AdamW update, op for op what shaders/adamw.wgsl does, with the
// same host-side constants (src/optim/adamw.ts adamwStepConstants). TF.js has no AdamW; its
// tf.train.adam is the same update without the decay term and costs the same (measured: 214 kernel
// calls per MLP step with it, 210 with this; step times within noise).

export class TfAdamW extends tf.Optimizer {
  static get className(): string {
    return 'StarlingBenchAdamW';
  }
  private t = 0;
  private readonly state = new Map<string, { m: tf.Variable; v: tf.Variable }>();

  constructor(
    private readonly hp: AdamWHyper,
    private readonly vars: ReadonlyMap<string, tf.Variable>,
  ) {
    super();
  }

  override applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const list: NamedTensor[] = Array.isArray(variableGradients)
      ? variableGradients
      : Object.keys(variableGradients).map((name) => ({ name, tensor: variableGradients[name] }));
    this.t++;
    const { lr, beta1, beta2, eps, weightDecay } = this.hp;
    const { stepSize, sqrtBc2 } = adamwStepConstants(this.hp, this.t);
    const decay = 1 - lr * weightDecay;
    tf.tidy(() => {
      for (const { name, tensor: g } of list) {
        const p = this.vars.get(name);
        if (!p) throw new Error(`TfAdamW: gradient for unknown variable ${name}`);
        let s = this.state.get(name);
        if (!s) {
          s = {
            m: tf.tidy(() => tf.zerosLike(p).variable(false)),
            v: tf.tidy(() => tf.zerosLike(p).variable(false)),
          };
          this.state.set(name, s);
        }
        const m = tf.add(tf.mul(s.m, beta1), tf.mul(g, 1 - beta1));
        const v = tf.add(tf.mul(s.v, beta2), tf.mul(tf.square(g), 1 - beta2));
        s.m.assign(m);
        s.v.assign(v);
        const update = tf.div(m, tf.add(tf.div(tf.sqrt(v), sqrtBc2), eps));
        p.assign(tf.sub(decay === 1 ? p : tf.mul(p, decay), tf.mul(update, stepSize)));
      }
    });
    this.incrementIterations();
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...this.hp };
  }

  override dispose(): void {
    super.dispose();
    for (const s of this.state.values()) {
      s.m.dispose();
      s.v.dispose();
    }
    this.state.clear();
  }
}

let tfVarSerial = 0;

// The MLP (src/model/mlp-spec.ts): embedding gather → concat → dense + GELU(tanh) → dense → softmax
// cross-entropy, mean over the batch.

export const THEIRS_MLP_IMPL =
  'tf.gather → reshape → tf.fused.matMul(transposeB, bias) → GELU(tanh) from ops → tf.fused.matMul → ' +
  'tf.losses.softmaxCrossEntropy(oneHot), optimizer.minimize(f, true) with a tf.Optimizer AdamW ' +
  '(bench/train-step-tfjs.ts), `await loss.data()`';

/** The MLP in TF.js, with variables initialised from `params` (flat, PyTorch layouts: Linear weight [out, in]). */
export function tfMlpSide(cfg: MlpConfig, batch: number, params: Float32Array, hp: AdamWHyper): StepSide {
  const specs = mlpParamSpecs(cfg);
  const serial = tfVarSerial++;
  const vars = specs.map((s) =>
    tf.variable(tf.tensor(params.slice(s.offset, s.offset + s.size), s.shape), true, `ts${serial}/${s.name}`),
  );
  const [emb, wh, bh, wo, bo] = vars as [
    tf.Variable<tf.Rank.R2>,
    tf.Variable<tf.Rank.R2>,
    tf.Variable<tf.Rank.R1>,
    tf.Variable<tf.Rank.R2>,
    tf.Variable<tf.Rank.R1>,
  ];
  const opt = new TfAdamW(hp, new Map(vars.map((v) => [v.name, v])));
  const { vocab: V, context: k, embed: D } = cfg;
  const c = Math.sqrt(2 / Math.PI);

  const loss = (tokens: tf.Tensor1D, targets: tf.Tensor1D) => (): tf.Scalar => {
    const x = tf.reshape<tf.Rank.R2>(tf.gather(emb, tokens), [batch, k * D]);
    const pre = tf.fused.matMul({ a: x, b: wh, transposeB: true, bias: bh });
    const u = tf.mul(tf.add(pre, tf.mul(tf.mul(pre, tf.mul(pre, pre)), 0.044715)), c);
    const h = tf.mul<tf.Tensor2D>(tf.mul(pre, 0.5), tf.add(tf.tanh(u), 1));
    const logits = tf.fused.matMul({ a: h, b: wo, transposeB: true, bias: bo });
    return tf.losses.softmaxCrossEntropy<tf.Tensor, tf.Scalar>(tf.oneHot(targets, V), logits);
  };

  const step = async (b: Batch): Promise<number> => {
    const tokens = tf.tensor1d(b.tokens, 'int32');
    const targets = tf.tensor1d(b.targets, 'int32');
    const cost = opt.minimize(loss(tokens, targets), true, vars);
    if (!cost) throw new Error('minimize returned no cost');
    const value = (await cost.data())[0];
    tf.dispose([cost, tokens, targets]);
    return value;
  };

  return sideOf(THEIRS_MLP_IMPL, step, vars, opt);
}

/** A StepSide over TF.js variables trained by `step`. */
function sideOf(impl: string, step: (b: Batch) => Promise<number>, vars: tf.Variable[], opt: tf.Optimizer): StepSide {
  return {
    impl,
    step,
    async kernelsPerStep(b) {
      const info = await tf.profile(async () => {
        await step(b);
        return [];
      });
      return info.kernels.length;
    },
    async params() {
      const flat = tf.tidy(() => tf.concat(vars.map((v) => tf.reshape(v, [-1]))));
      const out = (await flat.data()) as Float32Array;
      flat.dispose();
      return out;
    },
    destroy() {
      opt.dispose();
      for (const v of vars) v.dispose();
    },
  };
}

export const THEIRS_GPT_IMPL =
  'src/model/gpt-tfjs.test-helper.ts gptTfLossFn (gather, moments layernorm, matMul, batched attention with a band ' +
  'mask, GELU(tanh) from ops, softmaxCrossEntropy), optimizer.minimize(f, true) with the same tf.Optimizer AdamW, ' +
  '`await loss.data()`';

/** The GPT in TF.js (autodiff backward), variables initialised from `params` (gpt-spec layout). */
export function tfGptSide(cfg: GptConfig, batch: number, params: Float32Array, hp: AdamWHyper): StepSide {
  const specs = gptParamSpecs(cfg);
  const serial = tfVarSerial++;
  const vars = specs.map((s) =>
    tf.variable(tf.tensor(params.slice(s.offset, s.offset + s.size), s.shape), true, `tg${serial}/${s.name}`),
  );
  const opt = new TfAdamW(hp, new Map(vars.map((v) => [v.name, v])));
  const fn = gptTfLossFn(cfg);
  const T = cfg.context;

  const step = async (b: Batch): Promise<number> => {
    const tokens = tf.tensor2d(b.tokens, [batch, T], 'int32');
    const targets = tf.tensor2d(b.targets, [batch, T], 'int32');
    const cost = opt.minimize(() => fn(vars, tokens, targets), true, vars);
    if (!cost) throw new Error('minimize returned no cost');
    const value = (await cost.data())[0];
    tf.dispose([cost, tokens, targets]);
    return value;
  };
  return sideOf(THEIRS_GPT_IMPL, step, vars, opt);
}
