// TEST-ONLY: an independent TensorFlow.js implementation of the GPT model (gpt-spec.ts), built from
// tf ops (gather, moments, matMul, batched attention with a band mask, softmaxCrossEntropy) so that
// autodiff checks our hand-written backward. Used by gpt-cpu.test.ts and by benchmarks; never
// imported by the app (it would pull TensorFlow.js into the bundle).
import * as tf from '@tensorflow/tfjs';
import { gptParamSpecs, gptLinears, type GptConfig, type ParamSpec } from './gpt-spec';

export type GptTfLoss = (weights: tf.Tensor[], tokens: tf.Tensor2D, targets: tf.Tensor2D) => tf.Scalar;

/**
 * The loss function over weight tensors given in gptParamSpecs order (shapes as the specs),
 * int32 tokens/targets [B, T] (T ≤ context): mean softmax cross-entropy over all B·T positions.
 */
export function gptTfLossFn(cfg: GptConfig): GptTfLoss {
  const specs = gptParamSpecs(cfg);
  const index = new Map(specs.map((s, i) => [s.name, i]));
  const linears = gptLinears(cfg);
  const { width: C, heads: NH, vocab: V } = cfg;
  const hs = C / NH;

  return (weights, tokens, targets) => {
    if (weights.length !== specs.length)
      throw new RangeError(`expected ${specs.length} weight tensors, got ${weights.length}`);
    const w = (name: string) => weights[index.get(name)!];
    const [B, T] = tokens.shape;
    const layerNorm = (x: tf.Tensor, prefix: string) => {
      const { mean, variance } = tf.moments(x, -1, true);
      return tf.add(
        tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), w(`${prefix}.weight`)),
        w(`${prefix}.bias`),
      );
    };
    const linear = (x2: tf.Tensor2D, l: (typeof linears)[number]): tf.Tensor2D => {
      const y =
        l.rank > 0
          ? tf.matMul(tf.matMul(x2, w(`${l.name}.weight_v`) as tf.Tensor2D), w(`${l.name}.weight_u`), false, true)
          : tf.matMul(x2, w(`${l.name}.weight`), false, true);
      return tf.add(y, w(`${l.name}.bias`));
    };
    const gelu = (x: tf.Tensor) => {
      const u = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
      return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(u)));
    };
    const heads = (x: tf.Tensor) => tf.transpose(tf.reshape(x, [B, T, NH, hs]), [0, 2, 1, 3]); // [B,NH,T,hs]
    // 0 on and below the diagonal, −1e9 above: exp underflows to exactly 0 in float32.
    const mask = tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([T, T]), -1, 0)), -1e9);

    const pos = tf.slice(w('wpe.weight'), [0, 0], [T, C]);
    let x: tf.Tensor = tf.add(tf.reshape(tf.gather(w('wte.weight'), tf.reshape(tokens, [-1])), [B, T, C]), pos);
    for (let l = 0; l < cfg.layers; l++) {
      const [cAttn, aProj, cFc, mProj] = linears.slice(4 * l, 4 * l + 4);
      const h1 = tf.reshape<tf.Rank.R2>(layerNorm(x, `h.${l}.ln_1`), [B * T, C]);
      const qkv = tf.reshape(linear(h1, cAttn), [B, T, 3 * C]);
      const [q, k, v] = tf.split(qkv, 3, 2).map(heads);
      const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(hs)), mask);
      const y = tf.matMul(tf.softmax(scores), v); // [B,NH,T,hs]
      const yc = tf.reshape<tf.Rank.R2>(tf.transpose(y, [0, 2, 1, 3]), [B * T, C]);
      x = tf.add(x, tf.reshape(linear(yc, aProj), [B, T, C]));
      const h2 = tf.reshape<tf.Rank.R2>(layerNorm(x, `h.${l}.ln_2`), [B * T, C]);
      const m = linear(gelu(linear(h2, cFc)) as tf.Tensor2D, mProj);
      x = tf.add(x, tf.reshape(m, [B, T, C]));
    }
    const xf = tf.reshape<tf.Rank.R2>(layerNorm(x, 'ln_f'), [B * T, C]);
    const head = w(cfg.tiedEmbeddings ? 'wte.weight' : 'lm_head.weight') as tf.Tensor2D;
    const logits = tf.matMul(xf, head, false, true);
    const onehot = tf.oneHot(tf.reshape<tf.Rank.R1>(targets, [-1]), V);
    return tf.losses.softmaxCrossEntropy<tf.Tensor, tf.Scalar>(onehot, logits);
  };
}

export interface GptTf {
  specs: ParamSpec[];
  /** One trainable variable per spec, initialised from the flat params. */
  vars: tf.Variable[];
  /** Loss over the variables (use inside tf.variableGrads / optimizer.minimize). */
  loss(tokens: tf.Tensor2D, targets: tf.Tensor2D): tf.Scalar;
  dispose(): void;
}

/** Variables from flat params (gpt-spec layout) plus the loss over them. */
export function buildGptTf(cfg: GptConfig, params: Float32Array | Float64Array): GptTf {
  const specs = gptParamSpecs(cfg);
  const last = specs[specs.length - 1];
  if (params.length !== last.offset + last.size) {
    throw new RangeError(`expected ${last.offset + last.size} parameters for this model, got ${params.length}`);
  }
  const vars = specs.map((s) =>
    tf.variable(tf.tensor(Float32Array.from(params.subarray(s.offset, s.offset + s.size)), s.shape, 'float32'), true),
  );
  const fn = gptTfLossFn(cfg);
  return {
    specs,
    vars,
    loss: (tokens, targets) => fn(vars, tokens, targets),
    dispose: () => vars.forEach((v) => v.dispose()),
  };
}
