// Runs jobs: one active job trains at a time (the oldest running one); donors that connect while
// no job runs wait in the lobby and join the next. On start-up every job the store still marks as
// running is resumed from its latest checkpoint, so a coordinator restart loses no job.
import { EventEmitter } from 'node:events';
import type { Message } from '../src/protocol/messages';
import {
  modelEvalBatch,
  modelFlopsPerToken,
  modelInit,
  modelLoss,
  modelParamCount,
  type ModelConfig,
} from '../src/model/model';
import { JobEngine, type DonorLink, type EngineConfig, type RoundResult } from './job-engine';
import type { HubTarget } from './donor-hub';
import type { JobRunner } from './api';
import type { Store } from './store';
import { prepareJobData } from './api';
import { checkpointPaths, readCheckpointParams, readSyncState, writeCheckpoint, writeSyncState } from './checkpoint';
import { jobModelConfig } from './job-spec';

/** Predicted tokens in the validation set evaluated on the coordinator's CPU after every round. */
const VAL_TARGETS = 2048;
/**
 * Cap on one evaluation's forward FLOPs: it runs on the event loop (~0.35 GFLOP/s in float64), so a
 * bigger GPT gets fewer validation sequences (at least one) rather than stalling the round.
 */
const VAL_MAX_FLOPS = 3e8;

/** How many predicted tokens the validation set holds for this model (see VAL_MAX_FLOPS). */
export function validationTargets(model: ModelConfig): number {
  return Math.max(1, Math.min(VAL_TARGETS, Math.floor(VAL_MAX_FLOPS / modelFlopsPerToken(model))));
}

export class Runner extends EventEmitter implements JobRunner, HubTarget {
  private active: JobEngine | null = null;
  private readonly lobby = new Map<string, DonorLink>();
  private queue: string[] = [];

  constructor(
    private readonly store: Store,
    private readonly dataDir: string,
    private readonly log: (line: string) => void,
  ) {
    super();
  }

  /** Resumes jobs left running by a previous process. */
  async resumeRunning(): Promise<void> {
    // listJobs is newest first; resume oldest first so the queue keeps the original order.
    for (const j of [...this.store.listJobs()].reverse()) if (j.status === 'running') this.enqueue(j.id);
  }

  async startJob(jobId: string): Promise<void> {
    this.enqueue(jobId);
  }

  async stopJob(jobId: string): Promise<void> {
    this.queue = this.queue.filter((id) => id !== jobId);
    if (this.active?.cfg.jobId === jobId) this.active.stop();
    this.store.setJobStatus(jobId, 'stopped');
  }

  async resumeJob(jobId: string): Promise<void> {
    this.store.setJobStatus(jobId, 'running');
    this.enqueue(jobId);
  }

  liveStatus(jobId: string): unknown {
    const e = this.active;
    if (!e || e.cfg.jobId !== jobId) return { active: false, queued: this.queue.includes(jobId), donors: [] };
    return { active: true, round: e.round, version: e.version, donors: e.donorViews() };
  }

  activeJobId(): string | null {
    return this.active?.cfg.jobId ?? this.queue[0] ?? null;
  }

  activeEngine(): JobEngine | null {
    return this.active;
  }

  // --- HubTarget ---------------------------------------------------------------------------
  attachDonor(link: DonorLink): void {
    this.store.upsertDonor({
      id: link.donorId,
      jobId: this.active?.cfg.jobId ?? null,
      adapter: link.adapter,
      state: 'joined',
    });
    if (this.active) this.active.addDonor(link);
    else {
      this.lobby.set(link.donorId, link);
      void link.send('idle', { reason: 'no job is running; waiting for one' }).catch(() => {});
    }
  }

  detachDonor(donorId: string, reason: string): void {
    this.lobby.delete(donorId);
    this.active?.removeDonor(donorId, reason);
  }

  onDonorMessage(donorId: string, m: Message): void {
    const e = this.active;
    if (!e || !e.donors.has(donorId)) {
      if (m.kind === 'status' || m.kind === 'ready') return; // a lobby donor settling in
      throw new Error(`no job is running for donor ${donorId}; ${m.kind} ignored`);
    }
    switch (m.kind) {
      case 'ready':
        if (m.header.jobId !== e.cfg.jobId)
          throw new Error(`ready for job ${m.header.jobId}, the running job is ${e.cfg.jobId}`);
        e.onReady(donorId, m.header.version);
        break;
      case 'status':
        e.onStatus(donorId, m.header.state);
        break;
      case 'update': {
        // The engine checks the codec, the exact (or maximum) size and every value as it decodes.
        e.onUpdate(donorId, m.header, m.body ?? new Uint8Array(0));
        break;
      }
      default:
        throw new Error(`donors may not send ${m.kind} messages`);
    }
  }

  // --- running -------------------------------------------------------------------------------
  private enqueue(jobId: string): void {
    if (this.active?.cfg.jobId === jobId || this.queue.includes(jobId)) return;
    this.queue.push(jobId);
    if (!this.active) void this.next();
  }

  private async next(): Promise<void> {
    const jobId = this.queue.shift();
    if (!jobId) return;
    try {
      const engine = await this.buildEngine(jobId);
      this.active = engine;
      for (const link of this.lobby.values()) engine.addDonor(link);
      this.lobby.clear();
      engine.on('round', (r: RoundResult) => this.emit('round', r));
      this.emit('job-start', { jobId, round: engine.round, version: engine.version, valLoss: engine.evaluate() });
      this.log(`job ${jobId} (${engine.cfg.name}) running from round ${engine.round}, v${engine.version}`);
      const outcome = await engine.run();
      if (outcome === 'done') this.store.setJobStatus(jobId, 'done');
      this.emit('job-end', { jobId, outcome });
      this.log(`job ${jobId} ${outcome} after ${engine.round} rounds`);
      for (const [id, d] of engine.donors) this.lobby.set(id, d.link);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      this.log(`job ${jobId} failed: ${msg}`);
      this.store.setJobStatus(jobId, 'failed', msg);
      this.emit('job-end', { jobId, outcome: 'failed', error: msg });
    } finally {
      this.active = null;
    }
    if (this.queue.length) await this.next();
  }

  private async buildEngine(jobId: string): Promise<JobEngine> {
    const job = this.store.getJob(jobId);
    if (!job) throw new Error(`unknown job id "${jobId}"`);
    const data = await prepareJobData(this.store, job);
    const spec = job.spec;
    const model = jobModelConfig(spec.model, data.tokenizer.vocab.length);
    const n = modelParamCount(model);
    const paths = checkpointPaths(this.dataDir, jobId);
    let params = modelInit(model, spec.train.seed);
    let version = 0;
    // A missing checkpoint means a fresh job; a damaged one fails the job rather than silently restarting it.
    const saved = await readCheckpointParams(paths.latest, model);
    if (saved) {
      params = saved.params;
      version = saved.version;
    }
    if (params.length !== n) throw new Error(`checkpoint has ${params.length} values, model needs ${n}`);
    // The outer momentum and downlink residual of that version, so the restart changes nothing; a
    // sync file of another version (a crash between the two writes) is not used.
    const syncState = saved ? await readSyncState(paths.sync, n) : undefined;
    if (syncState && syncState.version !== version) {
      this.log(
        `job ${jobId}: sync state is for v${syncState.version}, the weights ` +
          `are v${version}: outer momentum and downlink residual start empty`,
      );
    }
    const resume = syncState?.version === version ? syncState : undefined;
    const val = modelEvalBatch(model, data.val, validationTargets(model));
    const cfg: EngineConfig = {
      jobId,
      name: spec.name,
      model,
      vocab: [...data.tokenizer.vocab],
      train: spec.train,
      dropAfterMisses: 2,
    };
    const store = this.store;
    const engine = new JobEngine(
      cfg,
      params,
      version,
      job.round ?? 0,
      {
        evaluate: (p) => modelLoss(model, p, val),
        checkpoint: async (v, p, sync) => {
          await writeCheckpoint(this.dataDir, jobId, model, v, p, {
            job: spec.name,
            vocab: JSON.stringify(data.tokenizer.vocab),
          });
          await writeSyncState(this.dataDir, jobId, { version: v, ...sync });
        },
        recordRound: (r) => {
          store.recordRound(r);
          store.updateJobProgress(jobId, { round: r.counted ? r.round + 1 : r.round, version: r.version });
        },
        recordDonor: (d) =>
          store.upsertDonor({
            id: d.donorId,
            jobId,
            adapter: d.adapter,
            state: d.state,
            roundsContributed: d.roundsContributed,
            bytesUp: d.bytesUp,
            bytesDown: d.bytesDown,
          }),
        log: this.log,
      },
      resume,
    );
    if (!saved) await engine.checkpointNow();
    return engine;
  }
}
