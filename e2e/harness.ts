// Shared set-up for the e2e tests: a coordinator on a free loopback port with a fresh data
// directory, a job created through the real API, and a headless fleet of donors.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../coordinator/server';
import { Fleet } from '../cli/fleet';
import type { RoundResult } from '../coordinator/job-engine';
import type { HeartbeatSettings } from '../src/protocol/heartbeat';

export interface Harness {
  server: RunningServer;
  fleet: Fleet;
  jobId: string;
  rounds: RoundResult[];
  initialValLoss: Promise<number>;
  /** Resolves with the first round result that satisfies `pred` (already-seen rounds included). */
  waitForRound(pred: (r: RoundResult) => boolean, what: string, timeoutMs?: number): Promise<RoundResult>;
  ended: Promise<{ outcome: string; error?: string }>;
  close(): Promise<void>;
}

export async function startHarness(
  job: Record<string, unknown>,
  donors: number,
  opts: { encode?: 'auto' | 'gpu' | 'cpu'; heartbeat?: Partial<HeartbeatSettings> } = {},
): Promise<Harness> {
  const dataDir = mkdtempSync(join(tmpdir(), 'starling-e2e-'));
  const server = await startServer({ port: 0, dataDir, log: () => {}, heartbeat: opts.heartbeat });
  const rounds: RoundResult[] = [];
  const listeners: (() => void)[] = [];
  server.runner.on('round', (r: RoundResult) => {
    rounds.push(r);
    listeners.forEach((l) => l());
  });
  let resolveInitial!: (v: number) => void;
  const initialValLoss = new Promise<number>((r) => (resolveInitial = r));
  server.runner.on('job-start', (e: { valLoss: number }) => resolveInitial(e.valLoss));
  const ended = new Promise<{ outcome: string; error?: string }>((r) => server.runner.on('job-end', r));
  const res = await fetch(`${server.url}/api/jobs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(job),
  });
  const body = (await res.json()) as { id?: string; job?: { id: string }; error?: string };
  const jobId = body.id ?? body.job?.id;
  if (!res.ok || !jobId) throw new Error(`job creation failed: ${body.error ?? res.status}`);
  const fleet = await Fleet.launch({ url: server.url, donors, prefix: 'e2e', log: () => {}, encode: opts.encode });
  return {
    server,
    fleet,
    jobId,
    rounds,
    initialValLoss,
    ended,
    waitForRound(pred, what, timeoutMs = 180_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = rounds.find(pred);
          if (hit) {
            clearTimeout(timer);
            resolve(hit);
            return true;
          }
          return false;
        };
        const timer = setTimeout(
          () =>
            reject(
              new Error(
                `timed out after ${timeoutMs} ms waiting for ${what}; rounds so far: ` +
                  `${JSON.stringify(rounds.map((r) => ({ round: r.round, accepted: r.accepted, donors: r.donors })))}`,
              ),
            ),
          timeoutMs,
        );
        if (!check()) listeners.push(() => void check());
      });
    },
    async close() {
      await fleet.close().catch(() => {});
      await server.close().catch(() => {});
    },
  };
}
