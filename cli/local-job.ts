// Runs one job end to end on this machine: a coordinator (in this process) and a fleet of headless
// Chromium donors over real WebRTC on loopback. `starling demo` and the compression benchmark's real
// arm (bench/compression-real.ts) both use it.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../coordinator/server';
import { Fleet } from './fleet';
import { checkpointPaths } from '../coordinator/checkpoint';
import type { RoundResult } from '../coordinator/job-engine';

export interface LocalJobOptions {
  /** The job as a researcher posts it (POST /api/jobs). */
  body: Record<string, unknown>;
  donors: number;
  dataDir?: string;
  port?: number;
  verbose?: boolean;
  /** Called once the job exists, with what the API says of it. */
  onCreated?(job: LocalJobInfo): void;
  onStart?(initialValLoss: number): void;
  onRound?(r: RoundResult): void;
}

export interface LocalJobInfo {
  id: string;
  params: number;
  spec: {
    train: {
      codec: string;
      downCodec: string;
      localSteps: number;
      outerLr: number;
      outerMomentum: number;
      seed: number;
    };
  };
}

export interface LocalJobResult {
  job: LocalJobInfo;
  initialValLoss: number;
  rounds: RoundResult[];
  donors: string[];
  dataDir: string;
  checkpoint: string;
  wallSeconds: number;
}

export async function runLocalJob(o: LocalJobOptions): Promise<LocalJobResult> {
  const dataDir = o.dataDir ?? mkdtempSync(join(tmpdir(), 'starling-local-'));
  const t0 = Date.now();
  const quiet = (l: string) => {
    if (o.verbose) console.log(`[coordinator] ${l}`);
  };
  const server = await startServer({ port: o.port ?? 0, dataDir, log: quiet });
  let fleet: Fleet | null = null;
  try {
    const auth = { authorization: `Bearer ${server.token}` };
    const res = await fetch(`${server.url}/api/jobs`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify(o.body),
    });
    const created = (await res.json()) as { id?: string; error?: string };
    if (!res.ok || !created.id) throw new Error(`creating the job failed: ${created.error ?? res.status}`);
    const jobId = created.id;
    const job = (await (await fetch(`${server.url}/api/jobs/${jobId}`, { headers: auth })).json()) as LocalJobInfo;
    o.onCreated?.(job);
    let initialValLoss = NaN;
    const rounds: RoundResult[] = [];
    const seen = new Set<string>();
    const ended = new Promise<{ outcome: string; error?: string }>((resolve) => {
      server.runner.on('job-start', (e: { jobId: string; valLoss: number }) => {
        if (e.jobId !== jobId) return;
        initialValLoss = e.valLoss;
        o.onStart?.(e.valLoss);
      });
      server.runner.on('round', (r: RoundResult) => {
        if (r.jobId !== jobId) return;
        rounds.push(r);
        r.donors.forEach((d) => seen.add(d));
        o.onRound?.(r);
      });
      server.runner.on('job-end', (e: { jobId: string; outcome: string; error?: string }) => {
        if (e.jobId === jobId) resolve(e);
      });
    });
    fleet = await Fleet.launch({ url: server.url, donors: o.donors, prefix: 'local', verbose: o.verbose, log: quiet });
    const end = await ended;
    if (end.outcome !== 'done') throw new Error(`job ${jobId} ${end.outcome}${end.error ? `: ${end.error}` : ''}`);
    return {
      job,
      initialValLoss,
      rounds,
      donors: [...seen],
      dataDir,
      checkpoint: checkpointPaths(dataDir, jobId).latest,
      wallSeconds: Math.round((Date.now() - t0) / 100) / 10,
    };
  } finally {
    await fleet?.close().catch(() => {});
    await server.close().catch(() => {});
  }
}
