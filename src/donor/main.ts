// Donor page: asks consent before touching the GPU, then runs the donor client and shows what it does.
import * as Comlink from 'comlink';
import type { TrainerWorkerApi } from '../worker/api';
import { DonorClient, initialDonorStats, type DonorClientOptions, type DonorStats } from './donor-client';
import { fmtBytes } from '../util/format';

const $ = (id: string) => document.getElementById(id) as HTMLElement;

function donorId(): string {
  const fromUrl = new URLSearchParams(location.search).get('donor');
  if (fromUrl && /^[A-Za-z0-9_-]{1,64}$/.test(fromUrl)) return fromUrl;
  let id = localStorage.getItem('starling.donorId');
  if (!id) {
    id = `d-${crypto.randomUUID().replace(/-/g, '').slice(0, 16)}`;
    localStorage.setItem('starling.donorId', id);
  }
  return id;
}

/** ?hb=MS and ?hbTimeout=MS set the heartbeat (tests and the fleet use short ones); see docs/PROTOCOL.md. */
function clientOptions(): DonorClientOptions {
  const q = new URLSearchParams(location.search);
  const num = (k: string) => {
    const v = q.get(k);
    return v === null ? undefined : Number(v);
  };
  return { heartbeat: { intervalMs: num('hb'), timeoutMs: num('hbTimeout') } };
}

const INITIAL: DonorStats = initialDonorStats('error');

function render(s: DonorStats): void {
  $('state').textContent = s.state;
  $('adapter').textContent = s.adapter;
  $('job').textContent = s.job;
  $('round').textContent = s.round === null ? '—' : String(s.round);
  $('loss').textContent = s.loss === null ? '—' : s.loss.toFixed(4);
  $('steps').textContent = String(s.steps);
  $('sent').textContent = fmtBytes(s.bytesSent);
  $('received').textContent = fmtBytes(s.bytesReceived);
  $('encoded-on').textContent = s.encodedOn === '' ? '—' : s.encodedOn === 'gpu' ? 'GPU' : 'CPU';
  // A real error, or while reconnecting why and when the next try is.
  const err = $('error');
  err.hidden = !s.error && !s.notice;
  err.textContent = s.error || s.notice;
  // Machine-readable mirror for the headless fleet and the e2e tests.
  document.body.dataset.state = s.state;
  document.body.dataset.steps = String(s.steps);
  document.body.dataset.rounds = String(s.rounds);
  document.body.dataset.encodedOn = s.encodedOn;
  document.body.dataset.connections = String(s.connections);
}

async function start(): Promise<void> {
  $('consent').hidden = true;
  $('status').hidden = false;
  const worker = new Worker(new URL('../worker/trainer.worker.ts', import.meta.url), { type: 'module' });
  const api = Comlink.wrap<TrainerWorkerApi>(worker);
  let client: DonorClient | null = null;
  try {
    client = new DonorClient(location.origin, donorId(), api, render, clientOptions());
    const c = client;
    let paused = false;
    $('pause').addEventListener('click', () => {
      paused = !paused;
      c.setPaused(paused);
      $('pause').textContent = paused ? 'Resume' : 'Pause';
    });
    await client.start();
  } catch (e) {
    const stats = client?.stats ?? INITIAL;
    render({ ...stats, state: 'error', error: e instanceof Error ? e.message : String(e) });
  }
}

$('start').addEventListener('click', () => void start());
// The headless fleet's operator consented by launching it.
if (new URLSearchParams(location.search).get('autostart') === '1') void start();
