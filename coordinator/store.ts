// The coordinator's durable state: jobs, per-round records, donors and uploaded corpora, in one
// SQLite file (`<dataDir>/starling.db`, WAL so readers never block the round loop's writes).
// Weights are not kept here: they are safetensors files (checkpoint.ts), and uploaded texts are
// plain files under `<dataDir>/uploads/`, so the database stays small.
import Database from 'better-sqlite3';
import { randomBytes, createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ID_RE, type JobSpec } from './job-spec';
import { withDefaults } from '../src/schema/check';
import { JobSpec as JobSpecSchema } from '../src/schema/job';

export type JobStatus = 'running' | 'stopped' | 'done' | 'failed';
export const JOB_STATUSES: readonly JobStatus[] = ['running', 'stopped', 'done', 'failed'];

export { ID_RE };

export interface JobRecord {
  id: string;
  name: string;
  spec: JobSpec;
  vocab: string[];
  /** SHA-256 (hex) of the corpus text the vocabulary was built from; checked when the data is rebuilt. */
  corpusSha256: string;
  status: JobStatus;
  createdAt: number;
  updatedAt: number;
  /** Version of the global weights (0 = initial weights). */
  version: number;
  /** Rounds completed, i.e. the 0-based index of the next round to run. */
  round: number;
  lastError: string | null;
}

/** One finished round; field names match the job engine's RoundResult so it can be passed as is. */
export interface RoundRecord {
  jobId: string;
  round: number;
  /** Weights version produced by this round. */
  version: number;
  startedAt: number;
  endedAt: number;
  /** Donors given work this round. */
  assigned: number;
  /** Updates aggregated. */
  accepted: number;
  /** Updates that arrived after the deadline. */
  late: number;
  /** Donors dropped this round. */
  dropped: number;
  /** Updates refused as invalid. */
  rejected: number;
  bytesUp: number;
  bytesDown: number;
  trainLoss: number | null;
  valLoss: number | null;
  /** Why the round's step was refused (the version did not advance); absent or null when it was taken. */
  refused?: string | null;
}

/** A round as read back: `refused` is always there (null for a round that took its step). */
export type StoredRound = RoundRecord & { refused: string | null };

export interface DonorRecord {
  id: string;
  /** '' for a donor waiting with no job. */
  jobId: string;
  adapter: string;
  firstSeen: number;
  lastSeen: number;
  roundsContributed: number;
  bytesUp: number;
  bytesDown: number;
  state: string;
}

/**
 * What the coordinator reports about a donor. `jobId` null means a donor waiting with no job
 * (kept under job id ""). Totals are for this job as the caller counts them; omitted ones keep
 * their stored value (0 for a new donor).
 */
export interface DonorUpdate {
  id: string;
  jobId: string | null;
  adapter: string;
  state: string;
  roundsContributed?: number;
  bytesUp?: number;
  bytesDown?: number;
}

export interface UploadRecord {
  id: string;
  bytes: number;
  sha256: string;
  createdAt: number;
}

export interface StoreMetrics {
  jobs: Record<JobStatus, number>;
  rounds: number;
  updatesAccepted: number;
  updatesLate: number;
  updatesDropped: number;
  updatesRejected: number;
  bytesUp: number;
  bytesDown: number;
  donors: number;
  uploads: number;
  uploadBytes: number;
}

export class StoreNotFoundError extends Error {
  override name = 'StoreNotFoundError';
}

/**
 * The values jobs stored before these train fields existed were trained with: plain averaging of int8
 * updates with an f32 broadcast, no gradient clipping, classic error feedback, AdamW's ε of 1e-8.
 */
export const LEGACY_TRAIN = {
  gradClip: 0,
  outerLr: 1,
  outerMomentum: 0,
  codec: 'int8',
  downCodec: 'f32',
  errorDecay: 1,
  eps: 1e-8,
} as const;

/** Fills the train fields an old stored spec lacks with the values it was trained with. */
function upgradeLegacySpecs(db: Database.Database): void {
  const rows = db.prepare('SELECT id, spec FROM jobs').all() as { id: string; spec: string }[];
  const update = db.prepare('UPDATE jobs SET spec = ? WHERE id = ?');
  for (const r of rows) {
    const spec = JSON.parse(r.spec) as { train?: Record<string, unknown> };
    spec.train = { ...LEGACY_TRAIN, ...spec.train };
    update.run(JSON.stringify(spec), r.id);
  }
}

/**
 * Jobs stored before train.aggregator existed keep the plain mean they ran with (a resumed job then
 * continues exactly as before); new jobs get the schema's default, clipped-mean.
 */
function legacyMeanAggregator(db: Database.Database): void {
  const rows = db.prepare('SELECT id, spec FROM jobs').all() as { id: string; spec: string }[];
  const update = db.prepare('UPDATE jobs SET spec = ? WHERE id = ?');
  for (const r of rows) {
    const spec = JSON.parse(r.spec) as { train?: Record<string, unknown> };
    if (spec.train?.aggregator !== undefined) continue;
    spec.train = { ...spec.train, aggregator: 'mean' };
    update.run(JSON.stringify(spec), r.id);
  }
}

// Each entry moves the schema from version i to i + 1 (SQL, or a function for data changes); never
// edit a released one, append.
const MIGRATIONS: (string | ((db: Database.Database) => void))[] = [
  `CREATE TABLE jobs (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     spec TEXT NOT NULL,
     vocab TEXT NOT NULL,
     corpus_sha256 TEXT NOT NULL,
     status TEXT NOT NULL CHECK (status IN ('running', 'stopped', 'done', 'failed')),
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     version INTEGER NOT NULL DEFAULT 0,
     round INTEGER NOT NULL DEFAULT 0,
     last_error TEXT
   );
   CREATE TABLE rounds (
     job_id TEXT NOT NULL REFERENCES jobs(id),
     round INTEGER NOT NULL,
     version INTEGER NOT NULL,
     started_at INTEGER NOT NULL,
     ended_at INTEGER NOT NULL,
     donors_assigned INTEGER NOT NULL,
     updates_accepted INTEGER NOT NULL,
     updates_late INTEGER NOT NULL,
     updates_dropped INTEGER NOT NULL,
     updates_rejected INTEGER NOT NULL,
     bytes_up INTEGER NOT NULL,
     bytes_down INTEGER NOT NULL,
     train_loss REAL,
     val_loss REAL,
     PRIMARY KEY (job_id, round)
   );
   CREATE TABLE donors (
     id TEXT NOT NULL,
     job_id TEXT NOT NULL, -- '' while the donor waits with no job, so no foreign key
     adapter TEXT NOT NULL,
     first_seen INTEGER NOT NULL,
     last_seen INTEGER NOT NULL,
     rounds_contributed INTEGER NOT NULL,
     bytes_up INTEGER NOT NULL,
     bytes_down INTEGER NOT NULL,
     state TEXT NOT NULL,
     PRIMARY KEY (id, job_id)
   );
   CREATE TABLE uploads (
     id TEXT PRIMARY KEY,
     bytes INTEGER NOT NULL,
     sha256 TEXT NOT NULL,
     created_at INTEGER NOT NULL
   );`,
  upgradeLegacySpecs,
  legacyMeanAggregator,
  // Why a round's step was refused (coordinator/job-engine.ts); null for rounds that took their step.
  (db) => {
    const cols = db.prepare('PRAGMA table_info(rounds)').all() as { name: string }[];
    if (!cols.some((c) => c.name === 'refused')) db.exec('ALTER TABLE rounds ADD COLUMN refused TEXT');
  },
];

export const SCHEMA_VERSION = MIGRATIONS.length;

interface JobRow {
  id: string;
  name: string;
  spec: string;
  vocab: string;
  corpus_sha256: string;
  status: JobStatus;
  created_at: number;
  updated_at: number;
  version: number;
  round: number;
  last_error: string | null;
}

function jobFromRow(r: JobRow): JobRecord {
  return {
    id: r.id,
    name: r.name,
    // Fields added since the job was stored take their schema defaults (legacy values are migrations).
    spec: withDefaults<JobSpec>(JobSpecSchema, JSON.parse(r.spec)),
    vocab: JSON.parse(r.vocab) as string[],
    corpusSha256: r.corpus_sha256,
    status: r.status,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    version: r.version,
    round: r.round,
    lastError: r.last_error,
  };
}

const ROUND_COLUMNS = `job_id AS jobId, round, version, started_at AS startedAt, ended_at AS endedAt,
  donors_assigned AS assigned, updates_accepted AS accepted, updates_late AS late,
  updates_dropped AS dropped, updates_rejected AS rejected, bytes_up AS bytesUp,
  bytes_down AS bytesDown, train_loss AS trainLoss, val_loss AS valLoss, refused`;

const DONOR_COLUMNS = `id, job_id AS jobId, adapter, first_seen AS firstSeen, last_seen AS lastSeen,
  rounds_contributed AS roundsContributed, bytes_up AS bytesUp, bytes_down AS bytesDown, state`;

/** Runs a write, turning a foreign-key failure into "unknown job id" rather than SQLite's bare message. */
function forJob<T>(jobId: string, write: () => T): T {
  try {
    return write();
  } catch (e) {
    if ((e as { code?: string }).code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
      throw new StoreNotFoundError(`unknown job id "${jobId}"`);
    }
    throw e;
  }
}

function checkId(what: string, id: string): void {
  if (typeof id !== 'string' || !ID_RE.test(id)) {
    throw new RangeError(`${what} must be 1..64 characters of A-Z a-z 0-9 _ -, got ${JSON.stringify(id)}`);
  }
}

function checkCount(what: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${what} must be a non-negative integer, got ${v}`);
}

/** NaN/Infinity losses are stored as null (SQLite has no NaN) rather than failing the round. */
function finiteOrNull(v: number | null): number | null {
  return v !== null && Number.isFinite(v) ? v : null;
}

export interface StoreOptions {
  /** Clock in ms since the epoch; injectable for tests. */
  now?: () => number;
}

export class Store {
  readonly db: Database.Database;
  readonly uploadsDir: string;
  private readonly now: () => number;

  private constructor(
    readonly dataDir: string,
    opts: StoreOptions,
  ) {
    this.now = opts.now ?? Date.now;
    mkdirSync(dataDir, { recursive: true });
    this.uploadsDir = join(dataDir, 'uploads');
    mkdirSync(this.uploadsDir, { recursive: true });
    this.db = new Database(join(dataDir, 'starling.db'));
    try {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('foreign_keys = ON');
      this.db.pragma('busy_timeout = 5000');
      this.migrate();
    } catch (e) {
      this.db.close();
      throw e;
    }
  }

  /** Opens (creating or migrating) the store in `dataDir`. */
  static open(dataDir: string, opts: StoreOptions = {}): Store {
    return new Store(dataDir, opts);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  schemaVersion(): number {
    return (this.db.prepare('SELECT version FROM schema_version').get() as { version: number }).version;
  }

  private migrate(): void {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
    const row = this.db.prepare('SELECT version FROM schema_version').get() as { version: number } | undefined;
    const current = row?.version ?? 0;
    if (current > MIGRATIONS.length) {
      throw new Error(
        `database ${join(this.dataDir, 'starling.db')} has schema version ${current}, newer than this Starling ` +
          `understands (${MIGRATIONS.length}); upgrade Starling or use another data directory`,
      );
    }
    const apply = this.db.transaction(() => {
      for (let v = current; v < MIGRATIONS.length; v++) {
        const m = MIGRATIONS[v];
        if (typeof m === 'string') this.db.exec(m);
        else m(this.db);
      }
      this.db.prepare('DELETE FROM schema_version').run();
      this.db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(MIGRATIONS.length);
    });
    if (current < MIGRATIONS.length) apply();
  }

  // ---- jobs ----

  createJob(input: {
    name: string;
    spec: JobSpec;
    vocab: string[];
    corpusSha256: string;
    status?: JobStatus;
    id?: string;
  }): JobRecord {
    const id = input.id ?? randomBytes(6).toString('hex');
    checkId('job id', id);
    const status = input.status ?? 'running';
    if (!JOB_STATUSES.includes(status))
      throw new RangeError(`job status must be one of ${JOB_STATUSES.join(', ')}, got ${status}`);
    const t = this.now();
    this.db
      .prepare(
        `INSERT INTO jobs (id, name, spec, vocab, corpus_sha256, status, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(id, input.name, JSON.stringify(input.spec), JSON.stringify(input.vocab), input.corpusSha256, status, t, t);
    return this.getJob(id)!;
  }

  getJob(id: string): JobRecord | undefined {
    const r = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined;
    return r && jobFromRow(r);
  }

  /** Jobs, newest first, optionally only those with `status`. */
  listJobs(filter: { status?: JobStatus } = {}): JobRecord[] {
    const rows = (
      filter.status
        ? this.db.prepare('SELECT * FROM jobs WHERE status = ? ORDER BY created_at DESC, rowid DESC').all(filter.status)
        : this.db.prepare('SELECT * FROM jobs ORDER BY created_at DESC, rowid DESC').all()
    ) as JobRow[];
    return rows.map(jobFromRow);
  }

  /** Sets the status; `lastError` is recorded when given (null clears it). */
  setJobStatus(id: string, status: JobStatus, lastError?: string | null): JobRecord {
    if (!JOB_STATUSES.includes(status))
      throw new RangeError(`job status must be one of ${JOB_STATUSES.join(', ')}, got ${status}`);
    const info =
      lastError === undefined
        ? this.db.prepare('UPDATE jobs SET status = ?, updated_at = ? WHERE id = ?').run(status, this.now(), id)
        : this.db
            .prepare('UPDATE jobs SET status = ?, last_error = ?, updated_at = ? WHERE id = ?')
            .run(status, lastError === null ? null : lastError.slice(0, 4000), this.now(), id);
    if (info.changes === 0) throw new StoreNotFoundError(`unknown job id "${id}"`);
    return this.getJob(id)!;
  }

  updateJobProgress(id: string, p: { version: number; round: number }): void {
    checkCount('version', p.version);
    checkCount('round', p.round);
    const info = this.db
      .prepare('UPDATE jobs SET version = ?, round = ?, updated_at = ? WHERE id = ?')
      .run(p.version, p.round, this.now(), id);
    if (info.changes === 0) throw new StoreNotFoundError(`unknown job id "${id}"`);
  }

  // ---- rounds ----

  /** Records a finished round; recording the same round again replaces it (a resumed job redoes it). */
  recordRound(r: RoundRecord): void {
    for (const k of [
      'round',
      'version',
      'startedAt',
      'endedAt',
      'assigned',
      'accepted',
      'late',
      'dropped',
      'rejected',
      'bytesUp',
      'bytesDown',
    ] as const) {
      checkCount(`round.${k}`, r[k]);
    }
    const stmt = this.db.prepare(
      `INSERT OR REPLACE INTO rounds (job_id, round, version, started_at, ended_at, donors_assigned,
         updates_accepted, updates_late, updates_dropped, updates_rejected, bytes_up, bytes_down, train_loss, val_loss,
         refused)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    forJob(r.jobId, () =>
      stmt.run(
        r.jobId,
        r.round,
        r.version,
        r.startedAt,
        r.endedAt,
        r.assigned,
        r.accepted,
        r.late,
        r.dropped,
        r.rejected,
        r.bytesUp,
        r.bytesDown,
        finiteOrNull(r.trainLoss),
        finiteOrNull(r.valLoss),
        r.refused ?? null,
      ),
    );
  }

  /** The rounds of a job whose step was refused, in order, with the reason. */
  refusedRounds(jobId: string): { round: number; reason: string }[] {
    return this.db
      .prepare('SELECT round, refused AS reason FROM rounds WHERE job_id = ? AND refused IS NOT NULL ORDER BY round')
      .all(jobId) as { round: number; reason: string }[];
  }

  /** Rounds of a job in order; `afterRound` and `limit` page through long jobs. */
  listRounds(jobId: string, opts: { afterRound?: number; limit?: number } = {}): StoredRound[] {
    return this.db
      .prepare(`SELECT ${ROUND_COLUMNS} FROM rounds WHERE job_id = ? AND round > ? ORDER BY round LIMIT ?`)
      .all(jobId, opts.afterRound ?? -1, opts.limit ?? -1) as StoredRound[];
  }

  // ---- donors ----

  upsertDonor(d: DonorUpdate): void {
    for (const k of ['roundsContributed', 'bytesUp', 'bytesDown'] as const) {
      if (d[k] !== undefined) checkCount(`donor.${k}`, d[k]);
    }
    if (d.jobId !== null && !this.getJob(d.jobId)) throw new StoreNotFoundError(`unknown job id "${d.jobId}"`);
    this.db
      .prepare(
        `INSERT INTO donors
           (id, job_id, adapter, first_seen, last_seen, rounds_contributed, bytes_up, bytes_down, state)
         VALUES (@id, @jobId, @adapter, @t, @t, COALESCE(@rounds, 0), COALESCE(@up, 0), COALESCE(@down, 0), @state)
         ON CONFLICT (id, job_id) DO UPDATE SET adapter = excluded.adapter, last_seen = excluded.last_seen,
           rounds_contributed = COALESCE(@rounds, rounds_contributed), bytes_up = COALESCE(@up, bytes_up),
           bytes_down = COALESCE(@down, bytes_down), state = excluded.state`,
      )
      .run({
        id: String(d.id).slice(0, 128),
        jobId: d.jobId ?? '',
        adapter: String(d.adapter).slice(0, 256),
        state: String(d.state).slice(0, 32),
        rounds: d.roundsContributed ?? null,
        up: d.bytesUp ?? null,
        down: d.bytesDown ?? null,
        t: this.now(),
      });
  }

  /** Donors of a job (null: those waiting with no job), first seen first. */
  listDonors(jobId: string | null): DonorRecord[] {
    return this.db
      .prepare(`SELECT ${DONOR_COLUMNS} FROM donors WHERE job_id = ? ORDER BY first_seen, id`)
      .all(jobId ?? '') as DonorRecord[];
  }

  // ---- uploads ----

  uploadPath(id: string): string {
    checkId('upload id', id);
    return join(this.uploadsDir, `${id}.txt`);
  }

  /** Stores the bytes as `<dataDir>/uploads/<id>.txt` (written then renamed, so never half a file). */
  async saveUpload(bytes: Uint8Array): Promise<UploadRecord> {
    const id = randomBytes(12).toString('hex');
    const path = this.uploadPath(id);
    const tmp = `${path}.tmp-${process.pid}`;
    try {
      await writeFile(tmp, bytes);
      await rename(tmp, path);
    } catch (e) {
      await unlink(tmp).catch(() => {});
      throw e;
    }
    const rec: UploadRecord = {
      id,
      bytes: bytes.byteLength,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      createdAt: this.now(),
    };
    this.db
      .prepare('INSERT INTO uploads (id, bytes, sha256, created_at) VALUES (@id, @bytes, @sha256, @createdAt)')
      .run(rec);
    return rec;
  }

  getUpload(id: string): UploadRecord | undefined {
    return this.db.prepare('SELECT id, bytes, sha256, created_at AS createdAt FROM uploads WHERE id = ?').get(id) as
      UploadRecord | undefined;
  }

  async readUpload(id: string): Promise<Buffer> {
    if (!ID_RE.test(id) || !this.getUpload(id)) throw new StoreNotFoundError(`unknown upload id "${id}"`);
    return readFile(this.uploadPath(id));
  }

  // ---- metrics ----

  metrics(): StoreMetrics {
    const jobs = Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>;
    for (const r of this.db.prepare('SELECT status, COUNT(*) AS n FROM jobs GROUP BY status').all() as {
      status: JobStatus;
      n: number;
    }[]) {
      jobs[r.status] = r.n;
    }
    const rounds = this.db
      .prepare(
        `SELECT COUNT(*) AS rounds, TOTAL(updates_accepted) AS updatesAccepted, TOTAL(updates_late) AS updatesLate,
           TOTAL(updates_dropped) AS updatesDropped, TOTAL(updates_rejected) AS updatesRejected,
           TOTAL(bytes_up) AS bytesUp, TOTAL(bytes_down) AS bytesDown FROM rounds`,
      )
      .get() as Omit<StoreMetrics, 'jobs' | 'donors' | 'uploads' | 'uploadBytes'>;
    const donors = (this.db.prepare('SELECT COUNT(DISTINCT id) AS n FROM donors').get() as { n: number }).n;
    const up = this.db.prepare('SELECT COUNT(*) AS n, TOTAL(bytes) AS b FROM uploads').get() as {
      n: number;
      b: number;
    };
    return { jobs, ...rounds, donors, uploads: up.n, uploadBytes: up.b };
  }
}
