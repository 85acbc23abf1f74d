// Researcher console: launch a job from a form, watch its loss curve and donors live (polling the
// token-protected API), stop/resume it and download its checkpoint.
import { renderLossChart } from './loss-chart';
import { fmtBytes } from '../util/format';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

interface JobRow {
  id: string;
  name: string;
  status: string;
  round?: number;
  version?: number;
  params?: number;
  spec?: {
    model?: Record<string, unknown>;
    train?: { rounds?: number; localSteps?: number; codec?: string; downCodec?: string };
  };
  lastError?: string | null;
}
interface RoundRow {
  round: number;
  valLoss: number | null;
  trainLoss: number | null;
  accepted?: number;
  assigned?: number;
  bytesUp?: number;
  bytesDown?: number;
}
interface DonorRow {
  donorId?: string;
  id?: string;
  adapter: string;
  state: string;
  roundsContributed: number;
  bytesUp: number;
  bytesDown: number;
}

let token = '';
let selected: string | null = null;

const hashToken = new URLSearchParams(location.hash.slice(1)).get('token');
if (hashToken) {
  localStorage.setItem('starling.token', hashToken);
  history.replaceState(null, '', location.pathname);
}
token = localStorage.getItem('starling.token') ?? '';
$<HTMLInputElement>('token').value = token;

async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(path, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers ?? {}) } });
  if (!res.ok) {
    let msg = `HTTP ${res.status}`;
    try {
      msg = ((await res.json()) as { error?: string }).error ?? msg;
    } catch {
      /* not JSON */
    }
    throw new Error(msg);
  }
  return (await res.json()) as T;
}

const asArray = <T>(v: unknown, key: string): T[] =>
  Array.isArray(v) ? (v as T[]) : (((v as Record<string, unknown>)?.[key] as T[]) ?? []);

function cell(tr: HTMLTableRowElement, text: string): HTMLTableCellElement {
  const td = tr.insertCell();
  td.textContent = text;
  return td;
}

/** One line for a job's model, e.g. "GPT 2 × 64, 2 heads, context 32". */
function describeModel(m: Record<string, unknown> | undefined): string {
  if (!m) return '?';
  // The coordinator validated the spec: these fields are numbers (or booleans) when present.
  const n = m as Record<string, number | boolean | undefined>;
  if (m.type === 'gpt') {
    const lr = m.lowRank as { rank: number; layers?: string } | undefined;
    return (
      `GPT ${n.layers} × ${n.width}, ${n.heads} heads, context ${n.context}${n.tiedEmbeddings ? '' : ', untied'}` +
      (lr ? `, low rank ${lr.rank} (${lr.layers ?? 'middle'})` : '')
    );
  }
  return `MLP context ${n.context}, embed ${n.embed}, hidden ${n.hidden}`;
}

// The form shows (and submits: a disabled fieldset's inputs are left out of FormData) only the
// chosen model's fields.
function showModelFields(): void {
  const type = $<HTMLSelectElement>('model-type').value;
  for (const fs of document.querySelectorAll<HTMLFieldSetElement>('fieldset.model')) {
    const on = fs.dataset.model === type;
    fs.hidden = !on;
    fs.disabled = !on;
  }
  $('batch-label').textContent = type === 'gpt' ? 'Batch (sequences / step)' : 'Batch (windows / step)';
}
$<HTMLSelectElement>('model-type').onchange = showModelFields;
showModelFields();

async function refresh(): Promise<void> {
  try {
    const jobs = asArray<JobRow>(await api('/api/jobs'), 'jobs');
    $('auth-state').textContent = 'connected';
    const body = $<HTMLTableElement>('jobs').tBodies[0];
    body.replaceChildren();
    for (const j of jobs) {
      const tr = body.insertRow();
      tr.dataset.jobId = j.id;
      cell(tr, `${j.name} (${j.id})`).title = describeModel(j.spec?.model);
      cell(tr, j.status);
      cell(tr, `${j.round ?? 0}/${j.spec?.train?.rounds ?? '?'}`);
      cell(tr, '');
      const b = document.createElement('button');
      b.className = 'secondary';
      b.textContent = 'Open';
      b.onclick = () => {
        selected = j.id;
        void refreshDetail();
      };
      tr.insertCell().appendChild(b);
    }
    if (!selected && jobs.length) selected = jobs[jobs.length - 1].id;
    await refreshDetail();
  } catch (e) {
    $('auth-state').textContent = e instanceof Error ? e.message : String(e);
  }
}

async function refreshDetail(): Promise<void> {
  if (!selected) return;
  const id = selected;
  const detail = await api<Record<string, unknown>>(`/api/jobs/${encodeURIComponent(id)}`);
  const job = (detail.job as JobRow) ?? detail;
  const rounds = asArray<RoundRow>(await api(`/api/jobs/${encodeURIComponent(id)}/rounds`), 'rounds');
  const live = (detail.live ?? {}) as { donors?: DonorRow[] };
  // A running job lists its live donors; a finished (or not yet started) one, the donors the store
  // recorded for it, so who contributed stays visible after the last round.
  const donors = live.donors?.length
    ? live.donors
    : asArray<DonorRow>(await api(`/api/jobs/${encodeURIComponent(id)}/donors`), 'donors');
  $('detail').hidden = false;
  $('detail-title').textContent = `${job.name} (${job.id})`;
  const lastVal = [...rounds].reverse().find((r) => r.valLoss !== null)?.valLoss;
  const up = rounds.reduce((a, r) => a + (r.bytesUp ?? 0), 0);
  const down = rounds.reduce((a, r) => a + (r.bytesDown ?? 0), 0);
  $('detail-summary').textContent =
    `${describeModel(job.spec?.model)} · status ${job.status}${job.lastError ? ` (${job.lastError})` : ''} ` +
    `· round ${job.round ?? 0}/${job.spec?.train?.rounds ?? '?'}` +
    ` · val loss ${lastVal?.toFixed(4) ?? '—'} · sent up ${fmtBytes(up)}, down ${fmtBytes(down)}` +
    compressionSummary(job, rounds);
  const row = document.querySelector<HTMLTableRowElement>(`tr[data-job-id="${CSS.escape(id)}"]`);
  if (row) row.cells[3].textContent = lastVal?.toFixed(4) ?? '—';
  const chart = document.querySelector<SVGSVGElement>('#chart');
  if (!chart) throw new Error('console: the page has no <svg id="chart">');
  renderLossChart(chart, [
    { name: 'validation loss', color: '#2f6fde', points: rounds.map((r) => ({ x: r.round + 1, y: r.valLoss ?? NaN })) },
    {
      name: 'train loss (donors)',
      color: '#e08a1e',
      points: rounds.map((r) => ({ x: r.round + 1, y: r.trainLoss ?? NaN })),
    },
  ]);
  const tb = $<HTMLTableElement>('donors').tBodies[0];
  tb.replaceChildren();
  for (const d of donors) {
    const tr = tb.insertRow();
    cell(tr, d.donorId ?? d.id ?? '?');
    cell(tr, d.adapter);
    cell(tr, d.state);
    cell(tr, String(d.roundsContributed ?? 0));
    cell(tr, fmtBytes(d.bytesUp ?? 0));
    cell(tr, fmtBytes(d.bytesDown ?? 0));
  }
}

/**
 * Codecs and H, the last round's bytes per donor (as counted on the data channels) and how many times
 * fewer bytes per local step that is than sending f32 weights both ways every step.
 */
function compressionSummary(job: JobRow, rounds: RoundRow[]): string {
  const t = job.spec?.train;
  if (!t?.codec) return '';
  const H = t.localSteps ?? 1;
  let s = ` · codec ${t.codec} up, ${t.downCodec ?? t.codec} down, ${H} local steps per round`;
  const last = [...rounds].reverse().find((r) => (r.assigned ?? 0) > 0 && r.bytesUp !== undefined);
  if (last && last.assigned) {
    const up = (last.bytesUp ?? 0) / last.assigned;
    const down = (last.bytesDown ?? 0) / last.assigned;
    s += ` · last round per donor: up ${fmtBytes(up)}, down ${fmtBytes(down)}`;
    if (job.params && up + down > 0)
      s += ` (${Math.round((8 * job.params * H) / (up + down))}× fewer bytes per step than f32)`;
  }
  return s;
}

$('save-token').onclick = () => {
  token = $<HTMLInputElement>('token').value.trim();
  localStorage.setItem('starling.token', token);
  void refresh();
};

$<HTMLFormElement>('new-job').onsubmit = async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target as HTMLFormElement);
  const num = (k: string) => Number(f.get(k));
  // Every field but 'file' is a text input or a select, so its entry is a string (or null when absent).
  const text = (k: string) => f.get(k) as string | null;
  const err = $('form-error');
  err.hidden = true;
  try {
    let source = String(text('source'));
    if (source === 'upload') {
      const file = f.get('file');
      if (!(file instanceof File) || file.size === 0) throw new Error('choose a text file to upload');
      const up = await api<{ id: string }>('/api/uploads', {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: await file.text(),
      });
      source = `upload:${up.id}`;
    }
    // The coordinator checks every field and names the one that is wrong; the form only shapes the JSON.
    const rank = (text('lowRankRank') ?? '').trim();
    const model =
      f.get('modelType') === 'gpt'
        ? {
            type: 'gpt',
            context: num('context'),
            layers: num('layers'),
            heads: num('heads'),
            width: num('width'),
            tiedEmbeddings: f.get('tiedEmbeddings') === 'true',
            ...(rank === '' ? {} : { lowRank: { rank: Number(rank), layers: String(text('lowRankLayers')) } }),
          }
        : { type: 'mlp', context: num('context'), embed: num('embed'), hidden: num('hidden') };
    const gradClip = (text('gradClip') ?? '').trim();
    const codec = (text('codec') ?? '').trim();
    const spec = {
      name: String(text('name')),
      model,
      data: { source },
      train: {
        rounds: num('rounds'),
        localSteps: num('localSteps'),
        batch: num('batch'),
        lr: num('lr'),
        ...(gradClip === '' ? {} : { gradClip: Number(gradClip) }),
        // Blank: the server's default (the compression benchmark's best arm), so the default job uses it.
        ...(codec === '' ? {} : { codec }),
        roundDeadlineMs: num('roundDeadlineMs'),
        minDonors: num('minDonors'),
      },
    };
    const created = await api<{ id?: string; job?: { id: string } }>('/api/jobs', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(spec),
    });
    selected = created.id ?? created.job?.id ?? null;
    await refresh();
  } catch (e) {
    err.hidden = false;
    err.textContent = e instanceof Error ? e.message : String(e);
  }
};

$('stop').onclick = () => selected && void api(`/api/jobs/${selected}/stop`, { method: 'POST' }).then(refresh);
$('resume').onclick = () => selected && void api(`/api/jobs/${selected}/resume`, { method: 'POST' }).then(refresh);
$('download').onclick = async () => {
  if (!selected) return;
  const res = await fetch(`/api/jobs/${selected}/checkpoint`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) return alert(`checkpoint: HTTP ${res.status}`);
  const a = document.createElement('a');
  a.href = URL.createObjectURL(await res.blob());
  a.download = `${selected}.safetensors`;
  a.click();
};

void refresh();
setInterval(() => void refresh(), 1500);
