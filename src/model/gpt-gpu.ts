// The GPT (gpt-spec.ts) trained on the GPU: forward and backward as fixed launch lists built once per
// (model, batch), mirroring the float64 reference in gpt-cpu.ts step for step. Parameters, AdamW,
// gradient clipping and the update live in TrainerCore.
//
// Memory: every activation the backward needs is kept per block (as in llm.c); the backward's
// scratch (gradients of activations) is one set of buffers shared by all blocks, and the residual
// stream's gradient is a single [N, C] buffer that each layernorm backward accumulates into.
// Attention keeps only a log-sum-exp per row, never a T×T matrix.
import { gptParamSpecs, gptLinears, validateGptConfig, type GptConfig, type GptLinear } from './gpt-spec';
import { checkGptBatch } from './gpt-cpu';
import { TrainerCore, type AdamWHyper, type TrainerOptions } from './trainer-core';
import { upload } from '../gpu/buffers';
import { gpuChecked } from '../gpu/error-scope';
import type { Binding, Launch } from '../gpu/launch';
import { matmulLaunch, matmulLaunches, matmulScratchBytes, type MatmulShape } from '../gpu/kernels/matmul';
import { halfMatmulLaunch } from '../gpu/kernels/half-matmul';
import { f32ToHalfLaunch, halfWords } from '../gpu/kernels/half';
import { biasAddLaunch, biasGradLaunch } from '../gpu/kernels/bias';
import { geluForwardLaunch, geluBackwardLaunch } from '../gpu/kernels/gelu';
import { xentForwardLaunch, xentMeanLaunch, xentBackwardLaunch } from '../gpu/kernels/xent';
import { encoderForwardLaunch, encoderBackwardWteLaunch, encoderBackwardWpeLaunch } from '../gpu/kernels/encoder';
import {
  layernormForwardLaunch,
  layernormBackwardDxLaunch,
  layernormBackwardParamsLaunch,
} from '../gpu/kernels/layernorm';
import { residualForwardLaunch } from '../gpu/kernels/residual';
import { attentionForwardLaunch, attentionBackwardLaunches, ATTENTION_MAX_HEAD_SIZE } from '../gpu/kernels/attention';

export type { AdamWHyper, TrainerOptions };
export type GptTrainerOptions = TrainerOptions;

/** Largest batch (sequences) accepted. */
export const GPT_MAX_BATCH = 4096;

export class GptTrainer extends TrainerCore {
  private readonly fwd: Launch[] = [];
  private readonly bwd: Launch[] = [];
  private readonly casts: Launch[] = [];
  /** Tokens per sequence (the model's context: every batch is B × context). */
  readonly seq: number;

  private constructor(
    device: GPUDevice,
    readonly cfg: GptConfig,
    /** Sequences per step (B); each has cfg.context tokens. */
    readonly batch: number,
    opts: TrainerOptions,
  ) {
    super(device, 'gpt', gptParamSpecs(cfg), opts);
    const { vocab: V, width: C, heads: NH, layers: L } = cfg;
    const B = batch;
    const T = cfg.context;
    this.seq = T;
    const N = B * T;
    const linears = gptLinears(cfg);
    const maxRank = Math.max(0, ...linears.map((l) => l.rank));
    const a = (name: string, floats: number) => this.alloc(name, 4 * floats);
    const f = this.buf;
    const P = (name: string): Binding => this.view(f.local, this.tensorIndex(name));
    // Matmuls that read a weight: from its f16 copy when halfWeights is on (one per weight, cast
    // from the f32 master after every update), else from the f32 weights.
    const half = Boolean(opts.halfWeights);
    const halfCopy = (name: string): GPUBuffer => {
      const key = `half:${name}`;
      if (!f[key]) {
        const t = this.tensorIndex(name);
        this.alloc(key, 4 * halfWords(this.specs[t].size));
        this.casts.push(...this.track([f32ToHalfLaunch(device, this.specs[t].size, { src: P(name), dst: f[key] })]));
      }
      return f[key];
    };
    const mmW = (shape: MatmulShape, a: Binding, weight: string, c: Binding): Launch =>
      half
        ? halfMatmulLaunch(device, { ...shape, halfB: true }, { a, b: halfCopy(weight), c })
        : matmulLaunch(device, shape, { a, b: P(weight), c });
    const G = (name: string): Binding => this.view(f.grads, this.tensorIndex(name));
    // Weight gradients are Aᵀ·B over all N = B·T positions: a long K and a small output, i.e. few
    // workgroups, so they may split K (partials in one scratch buffer shared by every such product,
    // sized for the largest split the planner picks).
    const headName = cfg.tiedEmbeddings ? 'wte.weight' : 'lm_head.weight';
    const weightGradShapes: MatmulShape[] = [{ M: V, N: C, K: N, transA: true }];
    for (const lin of linears) {
      if (lin.rank > 0)
        weightGradShapes.push(
          { M: lin.out, N: lin.rank, K: N, transA: true },
          { M: lin.in, N: lin.rank, K: N, transA: true },
        );
      else weightGradShapes.push({ M: lin.out, N: lin.in, K: N, transA: true });
    }
    const scratchBytes = Math.max(0, ...weightGradShapes.map((s) => matmulScratchBytes(device.limits, s)));
    if (scratchBytes > 0) a('mmScratch', scratchBytes / 4);
    const mmGrad = (shape: MatmulShape, a: Binding, b: Binding, c: Binding): Launch[] =>
      matmulLaunches(device, shape, { a, b, c, ...(f.mmScratch ? { scratch: f.mmScratch } : {}) });

    a('tokens', N);
    a('targets', N);
    // Residual stream: x0 = embeddings, then for block l: res2_l (after attention), x_{l+1} (after MLP).
    a('x0', N * C);
    for (let l = 0; l < L; l++) {
      a(`ln1_${l}`, N * C);
      a(`ln1Mean_${l}`, N);
      a(`ln1Rstd_${l}`, N);
      a(`qkv_${l}`, N * 3 * C);
      a(`atty_${l}`, N * C);
      a(`lse_${l}`, B * NH * T);
      a(`attProj_${l}`, N * C);
      a(`res2_${l}`, N * C);
      a(`ln2_${l}`, N * C);
      a(`ln2Mean_${l}`, N);
      a(`ln2Rstd_${l}`, N);
      a(`fc_${l}`, N * 4 * C);
      a(`fcGelu_${l}`, N * 4 * C);
      a(`fcProj_${l}`, N * C);
      a(`x${l + 1}`, N * C);
      for (const lin of linears.slice(4 * l, 4 * l + 4)) if (lin.rank > 0) a(`${lin.name}.h`, N * lin.rank);
    }
    a('lnf', N * C);
    a('lnfMean', N);
    a('lnfRstd', N);
    a('logits', N * V);
    a('losses', N);
    a('lse', N);
    a('loss', 1);
    // Backward scratch, shared by all blocks.
    a('dlogits', N * V);
    a('dlnf', N * C);
    a('dres', N * C);
    a('dfcGelu', N * 4 * C);
    a('dfc', N * 4 * C);
    a('dln', N * C);
    a('datty', N * C);
    a('dqkv', N * 3 * C);
    a('delta', B * NH * T);
    if (maxRank > 0) a('dh', N * maxRank);

    const attn = { batch: B, seq: T, channels: C, heads: NH };
    const enc = { batch: B, seq: T, channels: C, vocab: V };

    // ---- forward ----
    const linearForward = (lin: GptLinear, inp: GPUBuffer, out: GPUBuffer): Launch[] => {
      const ls: Launch[] = [];
      if (lin.rank > 0) {
        // h = inp·V [N, r]; out = h·Uᵀ [N, out]
        const h = f[`${lin.name}.h`];
        ls.push(mmW({ M: N, N: lin.rank, K: lin.in }, inp, `${lin.name}.weight_v`, h));
        ls.push(mmW({ M: N, N: lin.out, K: lin.rank, transB: true }, h, `${lin.name}.weight_u`, out));
      } else {
        ls.push(mmW({ M: N, N: lin.out, K: lin.in, transB: true }, inp, `${lin.name}.weight`, out));
      }
      ls.push(biasAddLaunch(device, N, lin.out, { bias: P(`${lin.name}.bias`), y: out }));
      return ls;
    };
    const fwd: Launch[] = [
      encoderForwardLaunch(device, enc, { tokens: f.tokens, wte: P('wte.weight'), wpe: P('wpe.weight'), out: f.x0 }),
    ];
    for (let l = 0; l < L; l++) {
      const [cAttn, aProj, cFc, mProj] = linears.slice(4 * l, 4 * l + 4);
      const p = `h.${l}.`;
      const x = f[`x${l}`];
      fwd.push(
        layernormForwardLaunch(device, N, C, {
          x,
          weight: P(p + 'ln_1.weight'),
          bias: P(p + 'ln_1.bias'),
          out: f[`ln1_${l}`],
          mean: f[`ln1Mean_${l}`],
          rstd: f[`ln1Rstd_${l}`],
        }),
        ...linearForward(cAttn, f[`ln1_${l}`], f[`qkv_${l}`]),
        attentionForwardLaunch(device, attn, { qkv: f[`qkv_${l}`], out: f[`atty_${l}`], lse: f[`lse_${l}`] }),
        ...linearForward(aProj, f[`atty_${l}`], f[`attProj_${l}`]),
        residualForwardLaunch(device, N * C, { a: x, b: f[`attProj_${l}`], out: f[`res2_${l}`] }),
        layernormForwardLaunch(device, N, C, {
          x: f[`res2_${l}`],
          weight: P(p + 'ln_2.weight'),
          bias: P(p + 'ln_2.bias'),
          out: f[`ln2_${l}`],
          mean: f[`ln2Mean_${l}`],
          rstd: f[`ln2Rstd_${l}`],
        }),
        ...linearForward(cFc, f[`ln2_${l}`], f[`fc_${l}`]),
        geluForwardLaunch(device, N * 4 * C, { x: f[`fc_${l}`], y: f[`fcGelu_${l}`] }),
        ...linearForward(mProj, f[`fcGelu_${l}`], f[`fcProj_${l}`]),
        residualForwardLaunch(device, N * C, { a: f[`res2_${l}`], b: f[`fcProj_${l}`], out: f[`x${l + 1}`] }),
      );
    }
    const xL = f[`x${L}`];
    fwd.push(
      layernormForwardLaunch(device, N, C, {
        x: xL,
        weight: P('ln_f.weight'),
        bias: P('ln_f.bias'),
        out: f.lnf,
        mean: f.lnfMean,
        rstd: f.lnfRstd,
      }),
      mmW({ M: N, N: V, K: C, transB: true }, f.lnf, headName, f.logits),
      xentForwardLaunch(device, N, V, { logits: f.logits, targets: f.targets, losses: f.losses, lse: f.lse }),
      xentMeanLaunch(device, N, { losses: f.losses, loss: f.loss }),
    );
    this.fwd = this.track(fwd);

    // ---- backward ----
    const linearBackward = (lin: GptLinear, dout: GPUBuffer, inp: GPUBuffer, dinp: GPUBuffer): Launch[] => {
      const ls: Launch[] = [];
      if (lin.rank > 0) {
        const r = lin.rank;
        const h = f[`${lin.name}.h`];
        const dh: Binding = { buffer: f.dh, offset: 0, size: 4 * N * r };
        ls.push(
          // dh = dout·U [N, r]; dU = doutᵀ·h [out, r]; dV = inpᵀ·dh [in, r]; dinp = dh·Vᵀ [N, in]
          mmW({ M: N, N: r, K: lin.out }, dout, `${lin.name}.weight_u`, dh),
          ...mmGrad({ M: lin.out, N: r, K: N, transA: true }, dout, h, G(`${lin.name}.weight_u`)),
          ...mmGrad({ M: lin.in, N: r, K: N, transA: true }, inp, dh, G(`${lin.name}.weight_v`)),
          mmW({ M: N, N: lin.in, K: r, transB: true }, dh, `${lin.name}.weight_v`, dinp),
        );
      } else {
        ls.push(
          // dW = doutᵀ·inp [out, in]; dinp = dout·W [N, in]
          ...mmGrad({ M: lin.out, N: lin.in, K: N, transA: true }, dout, inp, G(`${lin.name}.weight`)),
          mmW({ M: N, N: lin.in, K: lin.out }, dout, `${lin.name}.weight`, dinp),
        );
      }
      ls.push(biasGradLaunch(device, N, lin.out, { dy: dout, dbias: G(`${lin.name}.bias`) }));
      return ls;
    };
    const bwd: Launch[] = [
      xentBackwardLaunch(device, N, V, { logits: f.logits, targets: f.targets, lse: f.lse, dlogits: f.dlogits }),
      ...mmGrad({ M: V, N: C, K: N, transA: true }, f.dlogits, f.lnf, G(headName)),
      mmW({ M: N, N: C, K: V }, f.dlogits, headName, f.dlnf),
      layernormBackwardDxLaunch(device, N, C, {
        dout: f.dlnf,
        x: xL,
        weight: P('ln_f.weight'),
        mean: f.lnfMean,
        rstd: f.lnfRstd,
        dx: f.dres,
      }),
      layernormBackwardParamsLaunch(device, N, C, {
        dout: f.dlnf,
        x: xL,
        mean: f.lnfMean,
        rstd: f.lnfRstd,
        dweight: G('ln_f.weight'),
        dbias: G('ln_f.bias'),
      }),
    ];
    for (let l = L - 1; l >= 0; l--) {
      const [cAttn, aProj, cFc, mProj] = linears.slice(4 * l, 4 * l + 4);
      const p = `h.${l}.`;
      // dres holds dL/dx_{l+1}; x_{l+1} = res2 + fcProj, so fcProj's gradient is dres itself.
      bwd.push(
        ...linearBackward(mProj, f.dres, f[`fcGelu_${l}`], f.dfcGelu),
        geluBackwardLaunch(device, N * 4 * C, { x: f[`fc_${l}`], dy: f.dfcGelu, dx: f.dfc }),
        ...linearBackward(cFc, f.dfc, f[`ln2_${l}`], f.dln),
        layernormBackwardParamsLaunch(device, N, C, {
          dout: f.dln,
          x: f[`res2_${l}`],
          mean: f[`ln2Mean_${l}`],
          rstd: f[`ln2Rstd_${l}`],
          dweight: G(p + 'ln_2.weight'),
          dbias: G(p + 'ln_2.bias'),
        }),
        layernormBackwardDxLaunch(
          device,
          N,
          C,
          {
            dout: f.dln,
            x: f[`res2_${l}`],
            weight: P(p + 'ln_2.weight'),
            mean: f[`ln2Mean_${l}`],
            rstd: f[`ln2Rstd_${l}`],
            dx: f.dres,
          },
          { accumulate: true },
        ),
        // dres now holds dL/dres2; res2 = x_l + attProj.
        ...linearBackward(aProj, f.dres, f[`atty_${l}`], f.datty),
        ...attentionBackwardLaunches(device, attn, {
          qkv: f[`qkv_${l}`],
          out: f[`atty_${l}`],
          lse: f[`lse_${l}`],
          dout: f.datty,
          delta: f.delta,
          dqkv: f.dqkv,
        }),
        ...linearBackward(cAttn, f.dqkv, f[`ln1_${l}`], f.dln),
        layernormBackwardParamsLaunch(device, N, C, {
          dout: f.dln,
          x: f[`x${l}`],
          mean: f[`ln1Mean_${l}`],
          rstd: f[`ln1Rstd_${l}`],
          dweight: G(p + 'ln_1.weight'),
          dbias: G(p + 'ln_1.bias'),
        }),
        layernormBackwardDxLaunch(
          device,
          N,
          C,
          {
            dout: f.dln,
            x: f[`x${l}`],
            weight: P(p + 'ln_1.weight'),
            mean: f[`ln1Mean_${l}`],
            rstd: f[`ln1Rstd_${l}`],
            dx: f.dres,
          },
          { accumulate: true },
        ),
      );
    }
    // With tied embeddings the head's gradient is already in dwte: the encoder adds to it.
    bwd.push(
      encoderBackwardWteLaunch(
        device,
        enc,
        { tokens: f.tokens, dout: f.dres, dwte: G('wte.weight') },
        { accumulate: cfg.tiedEmbeddings },
      ),
      encoderBackwardWpeLaunch(device, enc, { dout: f.dres, dwpe: G('wpe.weight') }),
    );
    this.bwd = this.track(bwd);
  }

  static async create(
    device: GPUDevice,
    cfg: GptConfig,
    batch: number,
    opts: TrainerOptions = {},
  ): Promise<GptTrainer> {
    validateGptConfig(cfg);
    if (!Number.isInteger(batch) || batch < 1 || batch > GPT_MAX_BATCH) {
      throw new RangeError(`batch (sequences per step) must be an integer in [1, ${GPT_MAX_BATCH}], got ${batch}`);
    }
    const hs = cfg.width / cfg.heads;
    if (hs > ATTENTION_MAX_HEAD_SIZE) {
      throw new RangeError(
        `head size width/heads = ${hs} is over the attention ` +
          `kernel's limit of ${ATTENTION_MAX_HEAD_SIZE}; use more heads`,
      );
    }
    return gpuChecked(device, 'building the GPT trainer', () => new GptTrainer(device, cfg, batch, opts));
  }

  protected forwardLaunches(): Launch[] {
    return this.fwd;
  }

  protected override afterUpdateLaunches(): Launch[] {
    return this.casts;
  }

  protected backwardLaunches(): Launch[] {
    return this.bwd;
  }

  protected uploadBatch(tokens: Int32Array, targets: Int32Array): void {
    const T = checkGptBatch(this.cfg, tokens, targets, this.batch);
    if (T !== this.seq) {
      throw new RangeError(
        `expected ${this.batch} sequences of ${this.seq} tokens (the context), got ${this.batch} × ${T}`,
      );
    }
    upload(this.device, this.buf.tokens, tokens);
    upload(this.device, this.buf.targets, targets);
  }
}
