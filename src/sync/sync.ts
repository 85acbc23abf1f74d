// Both ends of a job's compressed synchronisation, shared by the coordinator (coordinator/job-engine.ts),
// the donor's worker (src/worker/trainer.worker.ts) and the compression benchmark's simulated donors,
// so all three send and apply exactly the same bytes.
//
//   donor:        Δ = θ_v − θ_local (+ residual) ─ up codec ─▶ bytes, residual ← what was not sent
//   coordinator:  g = mean decode(bytes); s = outer(g) (+ residual) ─ down codec ─▶ payload
//   everyone:     θ_{v+1} = θ_v − decode(payload)   (f32, same code, so bit-identical everywhere)
//
// The coordinator keeps θ as the donors reconstruct it, not θ − s: what the downlink failed to carry
// stays in its error-feedback residual and goes out with a later version.
import type { CodecContext } from '../compress/codec';
import { ErrorFeedback } from '../compress/error-feedback';
import type { ModelCodec, TensorSpec } from '../compress/model-codec';
import { downlinkContext, jobCodec, uplinkContext } from './job-codec';
import { OuterOptimizer, type OuterConfig } from './outer';
import { aggregate, parseAggregator, type Aggregator, type UpdateCheck } from './aggregate';

export interface SyncConfig {
  /** Codec of the donors' updates (codec-spec grammar). */
  codec: string;
  /** Codec of the broadcast step. */
  downCodec: string;
  outer: OuterConfig;
  /** The job's seed (downlink randomness). */
  seed: number;
  /** Donors' error-feedback decay (1: classic; below 1 for sparse DiLoCo, see ErrorFeedback). Default 1. */
  errorDecay?: number;
  /** How the coordinator combines the updates (train.aggregator grammar, src/sync/aggregate.ts). Default `mean`. */
  aggregator?: string;
}

/** Throws a RangeError unless `bytes` is the codec's exact size (fixed-size codecs) or at most its maximum. */
export function checkPayloadSize(codec: ModelCodec, bytes: number, what: string): void {
  const limit = codec.encodedBytes(codec.n);
  if (codec.fixedSize ? bytes !== limit : bytes > limit) {
    throw new RangeError(
      `${what} is ${bytes} bytes; ${codec.name} of ${codec.n} ` +
        `parameters is ${codec.fixedSize ? 'exactly' : 'at most'} ${limit}`,
    );
  }
}

/**
 * Decodes a payload and checks its size against the codec (exact, or at most the maximum) and that every value is
 * finite.
 */
export function decodeChecked(codec: ModelCodec, bytes: Uint8Array, ctx: CodecContext, what: string): Float32Array {
  checkPayloadSize(codec, bytes.byteLength, what);
  let x: Float32Array;
  try {
    x = codec.decode(bytes, codec.n, ctx);
  } catch (e) {
    throw new RangeError(`${what} does not decode as ${codec.name}: ${(e as Error).message}`);
  }
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) throw new RangeError(`${what}: value ${i} is ${x[i]}; updates must be finite`);
  }
  return x;
}

/** θ − s in f32: the one place a step is applied, so every party rounds the same way. */
export function applyStep(params: Float32Array, s: Float32Array): Float32Array {
  const out = new Float32Array(params.length);
  for (let i = 0; i < params.length; i++) out[i] = params[i] - s[i];
  return out;
}

/** The coordinator's side: decodes updates, takes the outer step, encodes the broadcast. */
/** CoordinatorSync's state between rounds (see CoordinatorSync.state). */
export interface CoordinatorState {
  momentum: Float32Array | null;
  residual: Float32Array;
}

export class CoordinatorSync {
  readonly up: ModelCodec;
  private readonly downEf: ErrorFeedback;
  private readonly outer: OuterOptimizer;
  /** The last broadcast: the payload that takes version − 1 to version. */
  last: { baseVersion: number; version: number; bytes: Uint8Array } | null = null;
  readonly aggregator: Aggregator;
  /** The last commit's per-update checks, in the order of its updates. */
  checks: UpdateCheck[] = [];
  private undo: {
    params: Float32Array;
    version: number;
    last: CoordinatorSync['last'];
    hadMomentum: boolean;
  } | null = null;
  /** The momentum and downlink residual before the last commit, in buffers kept across rounds. */
  private savedMomentum: Float32Array | null = null;
  private readonly savedResidual: Float32Array;

  constructor(
    readonly cfg: SyncConfig,
    layout: readonly TensorSpec[],
    public params: Float32Array,
    public version: number,
  ) {
    this.up = jobCodec(cfg.codec, layout);
    if (params.length !== this.up.n)
      throw new RangeError(`sync: ${params.length} weights, the layout has ${this.up.n}`);
    this.downEf = new ErrorFeedback(jobCodec(cfg.downCodec, layout), this.up.n);
    this.outer = new OuterOptimizer(cfg.outer, this.up.n);
    this.aggregator = parseAggregator(cfg.aggregator ?? 'mean');
    this.savedResidual = new Float32Array(this.up.n);
  }

  get n(): number {
    return this.up.n;
  }

  /**
   * What the coordinator carries from round to round besides θ: the outer momentum (null until the
   * first step, and without momentum) and the downlink's error-feedback residual. A checkpoint holds
   * them so a restarted coordinator continues exactly where it stopped (views, not copies).
   */
  get state(): CoordinatorState {
    return { momentum: this.outer.momentum, residual: this.downEf.residual };
  }

  /** Resumes from a checkpointed state (copied); throws a RangeError on a wrong length or a non-finite value. */
  restoreState(s: CoordinatorState): void {
    for (const [what, v] of [
      ['outer momentum', s.momentum],
      ['downlink residual', s.residual],
    ] as const) {
      if (!v) continue;
      if (v.length !== this.n)
        throw new RangeError(`sync state: ${what} has ${v.length} values, the model has ${this.n}`);
      const bad = v.findIndex((x) => !Number.isFinite(x));
      if (bad >= 0) throw new RangeError(`sync state: ${what} element ${bad} is ${v[bad]}`);
    }
    this.outer.restore(s.momentum);
    this.downEf.residual.set(s.residual);
  }

  /** A donor's update for a round it was assigned with `assignSeed`; throws a RangeError naming the problem. */
  decodeUpdate(bytes: Uint8Array, assignSeed: number, round: number): Float32Array {
    return decodeChecked(this.up, bytes, uplinkContext(assignSeed, round), 'update');
  }

  /**
   * Takes the outer step for the round's decoded updates (combined by the job's aggregator); returns
   * the broadcast payload (version + 1). `revert()` undoes it until the next commit.
   */
  commit(deltas: readonly Float32Array[]): Uint8Array {
    if (deltas.length === 0) throw new RangeError('sync commit: no updates');
    const { g, checks } = aggregate(deltas, this.aggregator);
    this.checks = checks;
    const momentum = this.outer.momentum;
    if (momentum) (this.savedMomentum ??= new Float32Array(this.n)).set(momentum);
    this.savedResidual.set(this.downEf.residual);
    this.undo = { params: this.params, version: this.version, last: this.last, hadMomentum: momentum !== null };
    const version = this.version + 1;
    let bytes: Uint8Array;
    try {
      const s = this.outer.step(g);
      let sent: Float32Array;
      ({ bytes, sent } = this.downEf.encodeSent(s, downlinkContext(this.cfg.seed, version)));
      this.params = applyStep(this.params, sent);
    } catch (e) {
      // E.g. a step that overflows f32 and that the down codec cannot encode: nothing changes.
      this.revert();
      throw e;
    }
    this.last = { baseVersion: this.version, version, bytes };
    this.version = version;
    return bytes;
  }

  /**
   * Undoes the last commit (a refused step): θ, version, the last broadcast, the outer momentum and
   * the downlink residual are as before it, so the refused step is never sent and leaves no trace.
   */
  revert(): void {
    const u = this.undo;
    if (!u) throw new RangeError('sync revert: no commit to undo');
    this.undo = null;
    this.params = u.params;
    this.version = u.version;
    this.last = u.last;
    this.outer.restore(u.hadMomentum ? this.savedMomentum : null); // restore copies
    this.downEf.residual.set(this.savedResidual);
  }
}

/** The donor's side: holds θ_v as every donor reconstructs it, and its uplink error feedback. */
export class DonorSync {
  private readonly up: ModelCodec;
  private readonly down: ModelCodec;
  private readonly ef: ErrorFeedback;
  params: Float32Array | null = null;
  version = -1;

  constructor(
    readonly cfg: Pick<SyncConfig, 'codec' | 'downCodec' | 'seed' | 'errorDecay'>,
    layout: readonly TensorSpec[],
  ) {
    this.up = jobCodec(cfg.codec, layout);
    this.down = jobCodec(cfg.downCodec, layout);
    this.ef = new ErrorFeedback(this.up, this.up.n, cfg.errorDecay ?? 1);
  }

  /** A full snapshot (new or lagging donor). */
  setSnapshot(params: Float32Array, version: number): void {
    if (params.length !== this.up.n)
      throw new RangeError(`snapshot has ${params.length} values, the model has ${this.up.n}`);
    this.params = params;
    this.version = version;
  }

  /** Applies a broadcast step; the donor must hold its base version (else it needs a snapshot). */
  applyDelta(baseVersion: number, version: number, bytes: Uint8Array): void {
    if (this.params === null || this.version !== baseVersion) {
      throw new RangeError(
        `step from v${baseVersion} to v${version}, but this donor holds v${this.version}; it needs a snapshot`,
      );
    }
    const s = decodeChecked(this.down, bytes, downlinkContext(this.cfg.seed, version), 'broadcast step');
    this.params = applyStep(this.params, s);
    this.version = version;
  }

  /** Encodes Δ = θ_v − θ_local plus the residual; throws (residual kept) when Δ is not finite. */
  encodeUpdate(local: Float32Array, assignSeed: number, round: number): Uint8Array {
    const base = this.params;
    if (base === null) throw new RangeError('encodeUpdate before any weights');
    if (local.length !== base.length)
      throw new RangeError(`local weights have ${local.length} values, the model has ${base.length}`);
    const delta = new Float32Array(base.length);
    for (let i = 0; i < base.length; i++) {
      delta[i] = base[i] - local[i];
      if (!Number.isFinite(delta[i])) {
        throw new RangeError(
          `the update holds ${delta[i]} at parameter ${i}: local training diverged; lower the learning rate`,
        );
      }
    }
    return this.ef.encode(delta, uplinkContext(assignSeed, round));
  }

  /** The uplink's model codec. */
  get upCodec(): ModelCodec {
    return this.up;
  }

  /** Forgets the uplink residual (a fresh error feedback). */
  resetUplink(): void {
    this.ef.reset();
  }

  /** Bytes of an update at most (exact for fixed-size codecs). */
  maxUpdateBytes(): number {
    return this.up.encodedBytes(this.up.n);
  }
}
