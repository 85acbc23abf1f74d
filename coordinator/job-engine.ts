// One job's synchronous rounds. Each round: every ready donor gets the current weights (when it
// does not hold them) and an assignment with a deadline; the updates that arrive by the deadline
// are decoded, checked and averaged; the outer step moves the global weights; the new version is
// validated, checkpointed and recorded. A late update is left out of its round; a donor that stays
// silent through `dropAfterMisses` deadlines is dropped.
import { EventEmitter } from 'node:events';
import { modelParamSpecs, type ModelConfig } from '../src/model/model';
import type { UpdateCheck } from '../src/sync/aggregate';
import { CoordinatorSync, checkPayloadSize, type CoordinatorState } from '../src/sync/sync';
import type { JobHeader, JobTrain, SendMessage, UpdateHeader } from '../src/protocol/messages';

export interface DonorLink {
  readonly donorId: string;
  readonly adapter: string;
  /** Sends a message; resolves when its frames are handed to the channel. */
  send: SendMessage;
  close(reason: string): void;
  bytesSent(): number;
  bytesReceived(): number;
}

export interface RoundResult {
  jobId: string;
  round: number;
  version: number;
  assigned: number;
  accepted: number;
  late: number;
  dropped: number;
  rejected: number;
  trainLoss: number | null;
  valLoss: number;
  bytesUp: number;
  bytesDown: number;
  startedAt: number;
  endedAt: number;
  donors: string[];
  /** Each accepted update's checks against the round's aggregate (train.aggregator), in `donors` order. */
  checks: DonorCheck[];
  /** Updates whose norm ratio exceeds FLAG_NORM_RATIO or whose cosine with the aggregate is negative. */
  flagged: number;
  /** Why the round's step was refused (the version did not advance), or null when it was taken. */
  refused: string | null;
  /**
   * Whether the round counts towards train.rounds (it took a step). When false, the next round runs under
   * the same number.
   */
  counted: boolean;
}

/** One donor's update checks in a round (the per-update checks of src/sync/aggregate.ts). */
export interface DonorCheck extends UpdateCheck {
  donorId: string;
}

/** An update more than this many times the round's median norm is flagged (and clipped by clipped-mean at τ = 2). */
export const FLAG_NORM_RATIO = 2;

/**
 * A step is refused when the validation loss after it exceeds the loss before it by more than ln(vocab):
 * the loss of a uniform guess, i.e. the step would cost more than everything a model can know over
 * guessing. Honest rounds move the loss by a small fraction of that; the measured ×1000 attack took it
 * from 3.57 to 837 in one round. (A 2× rule would refuse honest noise on a nearly trained model less
 * predictably: at loss 0.3 it allows only +0.3.)
 */
export function lossLimit(before: number, vocab: number): number {
  return before + Math.log(Math.max(2, vocab));
}

export interface EngineHooks {
  /** Mean validation loss of the given flat weights. */
  evaluate(params: Float32Array): number;
  /**
   * Persists the weights of a new version (checkpoint) and the coordinator's state between rounds
   * (outer momentum, downlink residual: views, to be written before the next round changes them).
   */
  checkpoint(version: number, params: Float32Array, sync: CoordinatorState): Promise<void>;
  recordRound(r: RoundResult): void;
  recordDonor(d: DonorView): void;
  log(line: string): void;
}

/** The job's identity, model and vocabulary, its train section as the spec has it, and the engine's own knobs. */
export interface EngineConfig {
  jobId: string;
  name: string;
  model: ModelConfig;
  vocab: string[];
  /** The job spec's train section, unchanged: it goes to the donors whole in the `job` message. */
  train: JobTrain;
  /** Consecutive missed deadlines after which a donor is dropped. */
  dropAfterMisses: number;
}

export interface DonorView {
  donorId: string;
  adapter: string;
  state: 'joined' | 'ready' | 'training' | 'paused' | 'gone';
  shard: number;
  version: number;
  roundsContributed: number;
  misses: number;
  lastLoss: number | null;
  bytesUp: number;
  bytesDown: number;
}

interface DonorState extends DonorView {
  link: DonorLink;
  pending?: { round: number; resolve: () => void };
  /** The seed of this round's assignment: the update's codec context. */
  assignSeed?: number;
}

interface ArrivedUpdate {
  donorId: string;
  delta: Float32Array;
  loss: number;
  bytes: number;
}

export class JobEngine extends EventEmitter {
  readonly donors = new Map<string, DonorState>();
  version: number;
  round: number;
  private stopped = false;
  private running = false;
  private wake: (() => void) | null = null;
  private collecting: { round: number; assigned: Set<DonorState>; updates: ArrivedUpdate[]; rejected: number } | null =
    null;
  /** Validation loss of θ_version when known (saves evaluating it again before the next step). */
  private lastValLoss: number | null = null;
  /** The loss stepProblem measured after the step. */
  private stepLoss: number | null = null;
  /** Late updates not yet reported; counted into the next round result (they also arrive between rounds). */
  private lateCount = 0;
  private nextShard = 0;
  /** A donor keeps its shard across reconnects, so a reloaded page trains on the shard it has cached. */
  private readonly shardOf = new Map<string, number>();
  readonly n: number;
  /** Decodes updates, takes the outer step and holds θ as every donor reconstructs it. */
  readonly sync: CoordinatorSync;

  constructor(
    readonly cfg: EngineConfig,
    params: Float32Array,
    version: number,
    round: number,
    private readonly hooks: EngineHooks,
    /** The state checkpointed with `version`, to resume exactly (absent: a fresh momentum and residual). */
    resume?: CoordinatorState,
  ) {
    super();
    this.version = version;
    this.round = round;
    this.n = params.length;
    this.sync = new CoordinatorSync(
      { ...cfg.train, outer: { lr: cfg.train.outerLr, momentum: cfg.train.outerMomentum } },
      modelParamSpecs(cfg.model),
      params,
      version,
    );
    if (resume) this.sync.restoreState(resume);
  }

  /** The global weights θ_version, exactly as every donor holds them. */
  get params(): Float32Array {
    return this.sync.params;
  }

  /** The `job` message a donor needs to load the model and data. */
  jobMessage(): JobHeader {
    const { jobId, name, model, vocab, train } = this.cfg;
    return { jobId, name, model, vocab, train };
  }

  addDonor(link: DonorLink): void {
    const old = this.donors.get(link.donorId);
    if (old) this.removeDonor(link.donorId, 'replaced by a new connection');
    const d: DonorState = {
      donorId: link.donorId,
      adapter: link.adapter,
      link,
      state: 'joined',
      shard: this.shardFor(link.donorId),
      version: -1,
      roundsContributed: 0,
      misses: 0,
      lastLoss: null,
      bytesUp: 0,
      bytesDown: 0,
    };
    this.donors.set(link.donorId, d);
    this.hooks.log(`donor ${link.donorId} joined (${link.adapter})`);
    void link.send('job', this.jobMessage()).catch((e) => this.hooks.log(`send job to ${link.donorId}: ${e}`));
    this.hooks.recordDonor(this.view(d));
  }

  private shardFor(donorId: string): number {
    let s = this.shardOf.get(donorId);
    if (s === undefined) {
      s = this.nextShard++ % this.cfg.train.shards;
      this.shardOf.set(donorId, s);
    }
    return s;
  }

  removeDonor(donorId: string, reason: string): void {
    const d = this.donors.get(donorId);
    if (!d) return;
    this.donors.delete(donorId);
    d.state = 'gone';
    this.hooks.log(`donor ${donorId} left: ${reason}`);
    this.hooks.recordDonor(this.view(d));
    d.pending?.resolve();
    this.poke();
  }

  onReady(donorId: string, version: number): void {
    const d = this.donors.get(donorId);
    if (!d) return;
    d.version = version;
    if (d.state !== 'training') d.state = 'ready';
    else if (version !== this.version) {
      // Assigned this round but holding other weights (it could not apply the step): it cannot answer.
      d.state = 'ready';
      d.pending?.resolve();
    }
    this.poke();
  }

  onStatus(donorId: string, state: string): void {
    const d = this.donors.get(donorId);
    if (!d) return;
    if (state === 'paused') d.state = 'paused';
    else if (d.state === 'paused') d.state = 'ready';
    this.hooks.recordDonor(this.view(d));
    this.poke();
  }

  /** An update from a donor. Throws an Error naming the problem when it is invalid (the hub reports it). */
  onUpdate(donorId: string, h: UpdateHeader, body: Uint8Array): void {
    const d = this.donors.get(donorId);
    if (!d) throw new Error(`update from unknown donor ${donorId}`);
    if (h.jobId !== this.cfg.jobId)
      throw new Error(`update for job ${h.jobId}, but this donor trains ${this.cfg.jobId}`);
    if (h.n !== this.n) throw new Error(`update has n=${h.n} parameters, the model has ${this.n}`);
    if (h.codec !== this.sync.up.name)
      throw new Error(`update codec ${h.codec}, but this job sends ${this.sync.up.name}`);
    // A malformed message (wrong size for the codec) is refused like a wrong n: it does not count as
    // the donor's answer. One that has the right size but does not decode does (below).
    checkPayloadSize(this.sync.up, body.byteLength, 'update');
    d.bytesUp += body.byteLength;
    const c = this.collecting;
    if (!c || c.round !== h.round || h.baseVersion !== this.version) {
      this.lateCount++;
      this.hooks.log(
        `late update from ${donorId} for round ${h.round} (now ${c?.round ?? 'between rounds'}): left out`,
      );
      return;
    }
    // Only the connection that was assigned this round may answer it, and only once: a second
    // update (or one from a donor that joined or reconnected mid-round) must not weigh in the mean.
    if (!c.assigned.has(d)) {
      c.rejected++;
      throw new Error(`update from ${donorId} for round ${h.round}, but this donor was not assigned round ${c.round}`);
    }
    if (c.updates.some((u) => u.donorId === donorId)) {
      c.rejected++;
      throw new Error(`second update from ${donorId} for round ${h.round}; one update per round is counted`);
    }
    let delta: Float32Array;
    try {
      delta = this.sync.decodeUpdate(body, d.assignSeed ?? 0, h.round);
    } catch (e) {
      c.rejected++;
      d.pending?.resolve();
      throw e;
    }
    c.updates.push({ donorId, delta, loss: h.loss, bytes: body.byteLength });
    d.lastLoss = h.loss;
    d.misses = 0;
    d.roundsContributed++;
    if (d.state === 'training') d.state = 'ready'; // a donor that paused meanwhile stays paused
    d.pending?.resolve();
  }

  /** Validation loss of the current global weights. */
  evaluate(): number {
    return this.hooks.evaluate(this.params);
  }

  /** Writes the current weights as a checkpoint (used for version 0 before any round). */
  async checkpointNow(): Promise<void> {
    await this.hooks.checkpoint(this.version, this.params, this.sync.state);
  }

  stop(): void {
    this.stopped = true;
    for (const d of this.donors.values()) d.pending?.resolve();
    this.poke();
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** Runs rounds until the job's round budget is spent or `stop()` is called. */
  async run(): Promise<'done' | 'stopped'> {
    this.running = true;
    try {
      while (!this.stopped && this.round < this.cfg.train.rounds) {
        const ready = await this.waitForDonors();
        if (this.stopped) break;
        await this.runRound(ready);
      }
      return this.stopped ? 'stopped' : 'done';
    } finally {
      this.running = false;
      for (const d of this.donors.values()) {
        void d.link.send('idle', { reason: this.stopped ? 'job stopped' : 'job finished' }).catch(() => {});
      }
    }
  }

  private poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private readyDonors(): DonorState[] {
    return [...this.donors.values()].filter((d) => d.state === 'ready');
  }

  private async waitForDonors(): Promise<DonorState[]> {
    for (;;) {
      const ready = this.readyDonors();
      if (this.stopped || ready.length >= this.cfg.train.minDonors) return ready;
      await new Promise<void>((r) => (this.wake = r));
    }
  }

  private async runRound(donors: DonorState[]): Promise<void> {
    const round = this.round;
    const startedAt = Date.now();
    const c = (this.collecting = { round, assigned: new Set(donors), updates: [] as ArrivedUpdate[], rejected: 0 });
    const sentBefore = new Map(donors.map((d) => [d.donorId, d.link.bytesSent()]));
    const recvBefore = new Map(donors.map((d) => [d.donorId, d.link.bytesReceived()]));
    const deadline = this.cfg.train.roundDeadlineMs;
    const waits: Promise<void>[] = [];
    for (const [i, d] of donors.entries()) {
      d.state = 'training';
      waits.push(new Promise<void>((resolve) => (d.pending = { round, resolve })));
      const seed = (this.cfg.train.seed * 1_000_003 + round * 7919 + i) >>> 0;
      d.assignSeed = seed;
      const send = async () => {
        const last = this.sync.last;
        // One version behind: the compressed broadcast step rides in the assignment (one message a round).
        let step: Uint8Array | undefined;
        if (d.version !== this.version && last && last.version === this.version && d.version === last.baseVersion) {
          step = last.bytes;
          d.version = this.version;
        } else if (d.version !== this.version) {
          // New or further behind: a full snapshot (exactly the n values, also when params is a view).
          const p = this.params;
          const body = new Uint8Array(p.buffer.slice(p.byteOffset, p.byteOffset + p.byteLength));
          await d.link.send(
            'weights',
            { jobId: this.cfg.jobId, version: this.version, n: this.n, encoding: 'f32' },
            body,
          );
          d.version = this.version;
        }
        const steps = this.cfg.train.localSteps;
        const { jobId } = this.cfg;
        const assign = { jobId, round, version: this.version, shard: d.shard, steps, seed, deadlineMs: deadline };
        await d.link.send('assign', assign, step);
      };
      send().catch((e) => {
        this.hooks.log(`assign to ${d.donorId} failed: ${e}`);
        d.pending?.resolve();
      });
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<void>((r) => (timer = setTimeout(r, deadline)));
    await Promise.race([Promise.all(waits), timedOut]);
    clearTimeout(timer);
    this.collecting = null;

    const arrived = new Set(c.updates.map((u) => u.donorId));
    let dropped = 0;
    for (const d of donors) {
      d.pending = undefined;
      // Gone, or replaced by a new connection under the same id (which must not pay for this one).
      if (this.donors.get(d.donorId) !== d) continue;
      if (this.stopped) {
        // stop() ended the wait: not the donor's miss.
        if (d.state === 'training') d.state = 'ready';
        continue;
      }
      if (!arrived.has(d.donorId)) {
        d.misses++;
        if (d.state === 'training') d.state = 'ready';
        if (d.misses >= this.cfg.dropAfterMisses) {
          dropped++;
          d.link.close(`missed ${d.misses} round deadlines of ${deadline} ms`);
          this.removeDonor(d.donorId, `silent for ${d.misses} rounds`);
        }
      }
    }

    let trainLoss: number | null = null;
    let valLoss: number;
    let refused: string | null = null;
    let checks: DonorCheck[] = [];
    if (c.updates.length > 0) {
      const before = this.lastValLoss ?? this.hooks.evaluate(this.params);
      let committed = false;
      try {
        this.sync.commit(c.updates.map((u) => u.delta));
        committed = true;
      } catch (e) {
        refused = `the step could not be taken: ${(e as Error).message}`; // commit left the state as it was
      }
      checks = this.sync.checks.map((k, i) => ({ donorId: c.updates[i].donorId, ...k }));
      if (committed) refused = this.stepProblem(before);
      if (refused === null) {
        valLoss = this.stepLoss!;
        this.version = this.sync.version;
        trainLoss = c.updates.reduce((a, u) => a + u.loss, 0) / c.updates.length;
        await this.hooks.checkpoint(this.version, this.params, this.sync.state);
      } else {
        // No new version: θ_v, its checkpoint and the last broadcast stay; the next assignment is for v again.
        if (committed) this.sync.revert();
        valLoss = before;
        this.hooks.log(`round ${round} refused: ${refused}; the weights stay at v${this.version}`);
      }
    } else {
      valLoss = this.hooks.evaluate(this.params);
    }
    this.lastValLoss = valLoss;
    // A round counts only when it took a step: one with no accepted update (donors that said ready and
    // vanished) or a refused step is run again under the same number, so such peers cannot burn rounds.
    const counted = c.updates.length > 0 && refused === null;
    if (counted) this.round++;
    const flagged = checks.filter((k) => k.normRatio > FLAG_NORM_RATIO || k.cosine < 0);
    for (const k of flagged) {
      this.hooks.log(
        `round ${round}: update from ${k.donorId} is an outlier (norm ${k.normRatio.toPrecision(3)}× the median, ` +
          `cosine ${k.cosine.toFixed(2)} with the aggregate${k.clipped ? ', clipped' : ''})`,
      );
    }
    let bytesUp = 0;
    let bytesDown = 0;
    for (const d of donors) {
      bytesDown += d.link.bytesSent() - (sentBefore.get(d.donorId) ?? 0);
      bytesUp += d.link.bytesReceived() - (recvBefore.get(d.donorId) ?? 0);
      d.bytesDown = d.link.bytesSent();
      d.bytesUp = d.link.bytesReceived();
      // A replaced connection's old state must not overwrite the live donor's record.
      const current = this.donors.get(d.donorId);
      if (current === d || current === undefined) this.hooks.recordDonor(this.view(d));
    }
    const late = this.lateCount;
    this.lateCount = 0;
    const result: RoundResult = {
      jobId: this.cfg.jobId,
      round,
      version: this.version,
      assigned: donors.length,
      accepted: c.updates.length,
      late,
      dropped,
      rejected: c.rejected,
      trainLoss,
      valLoss,
      bytesUp,
      bytesDown,
      startedAt,
      endedAt: Date.now(),
      donors: c.updates.map((u) => u.donorId),
      checks,
      flagged: flagged.length,
      refused,
      counted,
    };
    this.hooks.recordRound(result);
    this.emit('round', result);
  }

  /**
   * Why the step just committed must not be taken (a non-finite weight, or a validation loss above
   * lossLimit), or null; sets stepLoss to the loss after it.
   */
  private stepProblem(before: number): string | null {
    this.stepLoss = null;
    const p = this.sync.params;
    const bad = p.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) return `weight ${bad} would be ${p[bad]}`;
    const after = this.hooks.evaluate(p);
    this.stepLoss = after;
    if (!Number.isFinite(after)) return `validation loss would be ${after}`;
    const limit = lossLimit(before, this.cfg.vocab.length);
    // A current loss that is not finite gives no reference: any finite loss is then an improvement.
    if (Number.isFinite(before) && after > limit) {
      return `validation loss would rise from ${before.toFixed(4)} to ${after.toPrecision(4)} (limit ${limit.toFixed(4)})`;
    }
    return null;
  }

  view(d: DonorState): DonorView {
    const { link: _l, pending: _p, ...v } = d;
    return { ...v };
  }

  donorViews(): DonorView[] {
    return [...this.donors.values()].map((d) => this.view(d));
  }
}
