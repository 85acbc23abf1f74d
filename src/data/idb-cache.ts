// Donor-side cache in IndexedDB: the shards a donor trained on and its latest model snapshot, so a
// reload resumes without downloading again. Keys are scoped by job id; a different job never
// reads another's entries.
import { openDB, type IDBPDatabase } from 'idb';

const DB_NAME = 'starling';
const DB_VERSION = 1;

export interface CachedSnapshot {
  jobId: string;
  version: number;
  params: Float32Array;
  savedAt: number;
}

export class DonorCache {
  private constructor(private readonly db: IDBPDatabase) {}

  static async open(): Promise<DonorCache> {
    const db = await openDB(DB_NAME, DB_VERSION, {
      upgrade(d) {
        if (!d.objectStoreNames.contains('shards')) d.createObjectStore('shards');
        if (!d.objectStoreNames.contains('snapshots')) d.createObjectStore('snapshots');
      },
    });
    return new DonorCache(db);
  }

  async getShard(jobId: string, shard: number): Promise<Int32Array | undefined> {
    const buf = (await this.db.get('shards', `${jobId}/${shard}`)) as ArrayBuffer | undefined;
    return buf ? new Int32Array(buf) : undefined;
  }

  async putShard(jobId: string, shard: number, tokens: Int32Array): Promise<void> {
    await this.db.put('shards', tokens.slice().buffer, `${jobId}/${shard}`);
  }

  async getSnapshot(jobId: string): Promise<CachedSnapshot | undefined> {
    const s = (await this.db.get('snapshots', jobId)) as
      { jobId: string; version: number; params: ArrayBuffer; savedAt: number } | undefined;
    return s ? { ...s, params: new Float32Array(s.params) } : undefined;
  }

  async putSnapshot(jobId: string, version: number, params: Float32Array): Promise<void> {
    await this.db.put('snapshots', { jobId, version, params: params.slice().buffer, savedAt: Date.now() }, jobId);
  }

  /** Drops every entry of jobs other than `keepJobId`, so the cache does not grow without bound. */
  async pruneOtherJobs(keepJobId: string): Promise<void> {
    const tx = this.db.transaction(['shards', 'snapshots'], 'readwrite');
    for (const key of await tx.objectStore('shards').getAllKeys()) {
      if (typeof key !== 'string' || !key.startsWith(`${keepJobId}/`)) await tx.objectStore('shards').delete(key);
    }
    for (const key of await tx.objectStore('snapshots').getAllKeys()) {
      if (key !== keepJobId) await tx.objectStore('snapshots').delete(key);
    }
    await tx.done;
  }
}
