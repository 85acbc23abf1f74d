// A coordinator killed with SIGKILL mid-job and restarted on the same data directory and port: the job
// resumes where its last completed round left it, and the same headless donor pages (never reopened)
// notice the loss, reconnect to the coordinator's unchanged peer id and train again. And a coordinator
// frozen with SIGSTOP, whose sockets stay open so only the heartbeat can tell: the donors give it up
// within the timeout and come back once it runs again.
import { test, expect } from '@playwright/test';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Fleet } from '../cli/fleet';

/** A coordinator child process and its stdout lines, awaited by pattern. */
class Coordinator {
  readonly lines: string[] = [];
  readonly startedAt = Date.now();
  private readonly waiters: { re: RegExp; from: number; resolve: (m: RegExpMatchArray) => void }[] = [];
  readonly exited: Promise<void>;
  private readonly child: ChildProcess;

  constructor(port: number, dataDir: string, flags: string[] = []) {
    this.child = spawn(
      process.execPath,
      ['--import', 'tsx', 'cli/cli.ts', 'serve', '--port', String(port), '--data-dir', dataDir, ...flags],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, STARLING_TOKEN: '' } },
    );
    this.exited = new Promise((r) => this.child.once('exit', () => r()));
    let rest = '';
    const onData = (chunk: Buffer) => {
      const parts = (rest + chunk.toString()).split('\n');
      rest = parts.pop() ?? '';
      for (const line of parts) this.push(line);
    };
    this.child.stdout!.on('data', onData);
    this.child.stderr!.on('data', onData);
  }

  private push(line: string): void {
    this.lines.push(line);
    const i = this.lines.length - 1;
    for (const w of [...this.waiters]) {
      const m = i >= w.from ? w.re.exec(line) : null;
      if (m) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  }

  /** The first line (at index ≥ from) matching `re`; rejects after timeoutMs naming what it waited for. */
  waitFor(re: RegExp, timeoutMs = 60_000, from = 0): Promise<RegExpMatchArray> {
    for (let i = from; i < this.lines.length; i++) {
      const m = re.exec(this.lines[i]);
      if (m) return Promise.resolve(m);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new Error(`no line matching ${re} within ${timeoutMs} ms; output:\n${this.lines.slice(-30).join('\n')}`),
        );
      }, timeoutMs);
      this.waiters.push({
        re,
        from,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
    });
  }

  /** Completed rounds printed so far: `round N` lines (N counts rounds, so the last index is N − 1). */
  roundsDone(): { n: number; accepted: number; assigned: number }[] {
    return this.lines.flatMap((l) => {
      const m = /^round +(\d+) .* donors (\d+)\/(\d+)/.exec(l);
      return m ? [{ n: Number(m[1]), accepted: Number(m[2]), assigned: Number(m[3]) }] : [];
    });
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

test('donors come back to a coordinator restarted after kill -9, and the job resumes where it was', async () => {
  test.setTimeout(120_000);
  const dataDir = mkdtempSync(join(tmpdir(), 'starling-e2e-restart-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let first: Coordinator | null = new Coordinator(port, dataDir);
  let second: Coordinator | null = null;
  let fleet: Fleet | null = null;
  try {
    await first.waitFor(/^Starling coordinator on /);
    const token = readFileSync(join(dataDir, 'token'), 'utf8').trim();
    const auth = { authorization: `Bearer ${token}` };
    const res = await fetch(`${url}/api/jobs`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'e2e-restart', train: { rounds: 200, minDonors: 2 } }),
    });
    expect(res.status, await res.clone().text()).toBe(201);
    const jobId = ((await res.json()) as { id: string }).id;
    fleet = await Fleet.launch({ url, donors: 2, prefix: 'restart', log: () => {} });
    const ids = fleet.donors.map((d) => d.id);

    // Round index 3 done (the 4th `round` line), with both donors.
    await first.waitFor(/^round +4 /, 60_000);
    const before = first.roundsDone();
    const reached = Math.max(...before.map((r) => r.n)); // rounds completed: the next round's index
    first.kill('SIGKILL');
    await first.exited;
    first = null;
    // While it is down, the pages keep trying: a failed config fetch is retried, never a final error.
    await Promise.all(
      fleet.donors.map((d) =>
        d.page.waitForFunction(
          () =>
            document.body.dataset.state === 'connecting' &&
            /coordinator config: .*retrying in \d+\.\d s/.test(document.getElementById('error')?.textContent ?? ''),
          undefined,
          { timeout: 10_000 },
        ),
      ),
    );

    second = new Coordinator(port, dataDir);
    await second.waitFor(/^Starling coordinator on /);
    const listeningAt = Date.now();
    const resumed = await second.waitFor(/job \S+ \(e2e-restart\) running from round (\d+), v(\d+)/);
    const resumedAt = Number(resumed[1]);
    // The store may hold one round more than the killed process printed (killed between the two).
    expect(resumedAt).toBeGreaterThanOrEqual(reached);
    expect(resumedAt).toBeLessThanOrEqual(reached + 1);

    // Both pages (the same ones: no reload, no reopen) reconnect and get assignments within 10 s.
    await Promise.all(ids.map((id) => second!.waitFor(new RegExp(`donor ${id} joined`), 10_000)));
    const joinedAfter = Date.now() - listeningAt;
    await Promise.all(
      fleet.donors.map((d) =>
        d.page.waitForFunction(
          () => Number(document.body.dataset.connections) >= 2 && document.body.dataset.state === 'training',
          undefined,
          { timeout: Math.max(1, 10_000 - (Date.now() - listeningAt)) },
        ),
      ),
    );
    const trainingAfter = Date.now() - listeningAt;
    expect(fleet.donors.map((d) => d.restarts)).toEqual([0, 0]);

    // Two more rounds with both donors, numbered on from where the job resumed.
    await second.waitFor(new RegExp(`^round +${resumedAt + 2} `), 30_000);
    const after = second.roundsDone();
    expect(after.map((r) => r.n)).toEqual(after.map((_, i) => resumedAt + 1 + i));
    for (const r of after) expect([r.accepted, r.assigned]).toEqual([2, 2]);

    // The recorded rounds are continuous: every index from 0 once, none lost or repeated.
    const list = (await (await fetch(`${url}/api/jobs/${jobId}/rounds?limit=1000`, { headers: auth })).json()) as
      { rounds: { round: number }[] } | { round: number }[];
    const rounds = (Array.isArray(list) ? list : list.rounds).map((r) => r.round);
    expect(rounds).toEqual(rounds.map((_, i) => i));
    expect(rounds.length).toBeGreaterThanOrEqual(resumedAt + 2);
    console.log(
      `restart e2e: killed after ${reached} rounds, resumed at round ${resumedAt}; both donors joined ` +
        `${joinedAfter} ms and were training ${trainingAfter} ms after the new coordinator listened ` +
        `(${listeningAt - second.startedAt} ms after its start)`,
    );
  } finally {
    await fleet?.close().catch(() => {});
    first?.kill('SIGKILL');
    second?.kill('SIGKILL');
    await Promise.all([first?.exited, second?.exited]);
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('donors notice a frozen coordinator by the heartbeat alone, and come back when it runs again', async () => {
  test.setTimeout(120_000);
  const dataDir = mkdtempSync(join(tmpdir(), 'starling-e2e-freeze-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const heartbeat = { intervalMs: 500, timeoutMs: 2000 };
  const flags = ['--heartbeat-ms', '500', '--heartbeat-timeout-ms', '2000'];
  const coordinator = new Coordinator(port, dataDir, flags);
  let fleet: Fleet | null = null;
  try {
    await coordinator.waitFor(/^Starling coordinator on /);
    const token = readFileSync(join(dataDir, 'token'), 'utf8').trim();
    const res = await fetch(`${url}/api/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'e2e-freeze', train: { rounds: 200, minDonors: 2 } }),
    });
    expect(res.status, await res.clone().text()).toBe(201);
    fleet = await Fleet.launch({ url, donors: 2, prefix: 'freeze', log: () => {}, heartbeat });
    await coordinator.waitFor(/^round +2 /, 60_000);

    // Frozen: its TCP sockets stay open (no close, no signalling loss), it just says nothing.
    coordinator.kill('SIGSTOP');
    const frozenAt = Date.now();
    await Promise.all(
      fleet.donors.map((d) =>
        d.page.waitForFunction(() => document.body.dataset.state === 'connecting', undefined, {
          timeout: heartbeat.timeoutMs + 3000,
        }),
      ),
    );
    const noticedAfter = Date.now() - frozenAt;
    const notices = await Promise.all(fleet.donors.map((d) => d.page.locator('#error').textContent()));
    for (const n of notices) expect(n).toMatch(/no message from the coordinator for \d+\.\d s.*retrying in/);
    // Silence counts from the last beat heard, up to one interval before the freeze.
    expect(noticedAfter).toBeGreaterThanOrEqual(heartbeat.timeoutMs - heartbeat.intervalMs);

    const from = coordinator.lines.length;
    coordinator.kill('SIGCONT');
    const resumedAt = Date.now();
    const ids = fleet.donors.map((d) => d.id);
    await Promise.all(ids.map((id) => coordinator.waitFor(new RegExp(`donor ${id} joined`), 10_000, from)));
    // A round that ends after both joined, trained by both.
    await coordinator.waitFor(/^round +\d+ .* donors 2\/2/, 30_000, coordinator.lines.length);
    console.log(
      `freeze e2e: both donors noticed the frozen coordinator after ${noticedAfter} ms ` +
        `(timeout ${heartbeat.timeoutMs} ms) and were back ${Date.now() - resumedAt} ms after it resumed`,
    );
  } finally {
    await fleet?.close().catch(() => {});
    coordinator.kill('SIGCONT');
    coordinator.kill('SIGKILL');
    await coordinator.exited;
    rmSync(dataDir, { recursive: true, force: true });
  }
});
