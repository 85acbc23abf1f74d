// The MLP language model trained on the GPU: forward and backward as fixed lists of kernel launches
// built once per (model, batch); parameters, AdamW, clipping and the update live in TrainerCore.
import { mlpParamSpecs, validateMlpConfig, type MlpConfig } from './mlp-spec';
import { checkMlpBatch } from './mlp-batch';
import { TrainerCore, type AdamWHyper, type TrainerOptions } from './trainer-core';
import { upload } from '../gpu/buffers';
import { gpuChecked } from '../gpu/error-scope';
import type { Binding, Launch } from '../gpu/launch';
import { embeddingForwardLaunch, embeddingBackwardLaunch } from '../gpu/kernels/embedding';
import { matmulLaunch } from '../gpu/kernels/matmul';
import { biasAddLaunch, biasGradLaunch } from '../gpu/kernels/bias';
import { geluForwardLaunch, geluBackwardLaunch } from '../gpu/kernels/gelu';
import { xentForwardLaunch, xentMeanLaunch, xentBackwardLaunch } from '../gpu/kernels/xent';

export type { AdamWHyper, TrainerOptions };

/** Largest batch accepted (the embedding backward loops over batch·context positions per element). */
export const MAX_BATCH = 65536;

export class MlpTrainer extends TrainerCore {
  private readonly fwd: Launch[];
  private readonly bwd: Launch[];

  private constructor(
    device: GPUDevice,
    readonly cfg: MlpConfig,
    readonly batch: number,
    opts: TrainerOptions,
  ) {
    super(device, 'mlp', mlpParamSpecs(cfg), opts);
    const { vocab: V, context: k, embed: D, hidden: H } = cfg;
    const B = batch;
    const KD = k * D;
    const sizes: Record<string, number> = {
      tokens: 4 * B * k,
      targets: 4 * B,
      x: 4 * B * KD,
      pre: 4 * B * H,
      h: 4 * B * H,
      logits: 4 * B * V,
      losses: 4 * B,
      lse: 4 * B,
      loss: 4,
      dlogits: 4 * B * V,
      dh: 4 * B * H,
      dpre: 4 * B * H,
      dx: 4 * B * KD,
    };
    for (const [name, bytes] of Object.entries(sizes)) this.alloc(name, bytes);
    const f = this.buf;
    const local = (t: number): Binding => this.view(f.local, t);
    const grad = (t: number): Binding => this.view(f.grads, t);
    const [EMB, WH, BH, WO, BO] = [0, 1, 2, 3, 4];
    const emb = { batch: B, context: k, dim: D, vocab: V };

    this.fwd = this.track([
      embeddingForwardLaunch(device, emb, { tokens: f.tokens, table: local(EMB), x: f.x }),
      matmulLaunch(device, { M: B, N: H, K: KD, transB: true }, { a: f.x, b: local(WH), c: f.pre }),
      biasAddLaunch(device, B, H, { bias: local(BH), y: f.pre }),
      geluForwardLaunch(device, B * H, { x: f.pre, y: f.h }),
      matmulLaunch(device, { M: B, N: V, K: H, transB: true }, { a: f.h, b: local(WO), c: f.logits }),
      biasAddLaunch(device, B, V, { bias: local(BO), y: f.logits }),
      xentForwardLaunch(device, B, V, { logits: f.logits, targets: f.targets, losses: f.losses, lse: f.lse }),
      xentMeanLaunch(device, B, { losses: f.losses, loss: f.loss }),
    ]);
    this.bwd = this.track([
      xentBackwardLaunch(device, B, V, { logits: f.logits, targets: f.targets, lse: f.lse, dlogits: f.dlogits }),
      matmulLaunch(device, { M: V, N: H, K: B, transA: true }, { a: f.dlogits, b: f.h, c: grad(WO) }),
      biasGradLaunch(device, B, V, { dy: f.dlogits, dbias: grad(BO) }),
      matmulLaunch(device, { M: B, N: H, K: V }, { a: f.dlogits, b: local(WO), c: f.dh }),
      geluBackwardLaunch(device, B * H, { x: f.pre, dy: f.dh, dx: f.dpre }),
      matmulLaunch(device, { M: H, N: KD, K: B, transA: true }, { a: f.dpre, b: f.x, c: grad(WH) }),
      biasGradLaunch(device, B, H, { dy: f.dpre, dbias: grad(BH) }),
      matmulLaunch(device, { M: B, N: KD, K: H }, { a: f.dpre, b: local(WH), c: f.dx }),
      embeddingBackwardLaunch(device, emb, { tokens: f.tokens, dx: f.dx, dtable: grad(EMB) }),
    ]);
  }

  static async create(
    device: GPUDevice,
    cfg: MlpConfig,
    batch: number,
    opts: TrainerOptions = {},
  ): Promise<MlpTrainer> {
    validateMlpConfig(cfg);
    if (!Number.isInteger(batch) || batch < 1 || batch > MAX_BATCH) {
      throw new RangeError(`batch must be an integer in [1, ${MAX_BATCH}], got ${batch}`);
    }
    return gpuChecked(device, 'building the MLP trainer', () => new MlpTrainer(device, cfg, batch, opts));
  }

  protected forwardLaunches(): Launch[] {
    return this.fwd;
  }

  protected backwardLaunches(): Launch[] {
    return this.bwd;
  }

  protected uploadBatch(tokens: Int32Array, targets: Int32Array): void {
    checkMlpBatch(this.cfg, tokens, targets, this.batch);
    upload(this.device, this.buf.tokens, tokens);
    upload(this.device, this.buf.targets, targets);
  }
}
