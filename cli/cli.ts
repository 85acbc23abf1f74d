#!/usr/bin/env node
// starling serve | fleet | demo — one CLI for the operator and the quick start.
import { parseArgs } from 'node:util';
import { join, resolve } from 'node:path';
import { startServer } from '../coordinator/server';
import { Fleet } from './fleet';
import { runLocalJob } from './local-job';
import type { RoundResult } from '../coordinator/job-engine';
import { sampleFromCheckpoint } from './sample-checkpoint';
import { trainLocal } from './train-local';
import { jobFlagUsage, parseTrainArgs } from './train-args';
import { DEMO_GPT_JOB } from './demo-jobs';
import { fmtBytes } from '../src/util/format';
import { tokenHint } from './token-hint';
import { MAX_HEARTBEAT_TIMEOUT_MS, MIN_HEARTBEAT_MS } from '../src/protocol/heartbeat';

const USAGE = `usage: starling <command> [options]

commands:
  serve   run the coordinator (HTTP API, console, donor page, signalling, rounds)
            --port N (8080)  --host H (127.0.0.1)  --data-dir DIR (.starling)
            --data-root DIR (repeatable or comma-separated): folders jobs' file: sources may name,
              besides the data dir; any other file is refused
            --heartbeat-ms N (2000)  --heartbeat-timeout-ms N (8000): beat period on donor channels, and
              the silence after which a donor is dropped
  fleet   launch headless Chromium donors against a coordinator
            --url URL (http://127.0.0.1:8080)  --donors N (2)  --verbose
  demo    start a coordinator and local headless donors, train the default job, print a summary
            --model mlp|gpt (mlp; gpt: a 1-layer GPT, width 32, context 16)  --rounds N (20)  --donors N (2)
            --port N (0: any free port)  --data-dir DIR (a new temp dir)  --verbose
  train   train one model on this machine's GPU (Node WebGPU), single donor, no coordinator
            --model mlp|gpt (mlp)  --steps N (2000)  --warmup N (100)  --eval-every N (200)
            --log-every N (eval-every/5; 0 = off)  --eval-tokens N (2048)  --out FILE (model.safetensors)
            GPT: --tied | --untied (tied); --rank R and --lowrank-layers: low rank from the start, or with
                 --lowrank-at STEP: full rank until STEP, then factorise (Pufferfish) and train on;
                 --cuttlefish (with --lowrank-at): choose the rank from the stable ranks
            flags that set job fields (ranges and defaults of the job schema, docs/JOBS.md):
${jobFlagUsage('              ')}
  sample  generate text from a checkpoint (safetensors) on the CPU
            --checkpoint FILE  --prompt TEXT ('')  --tokens N (200)  --temperature T (0.8; 0 = greedy)
            --top-k K  --seed S (1)

environment: STARLING_TOKEN (API token), STARLING_CHROMIUM (browser path), STARLING_GPU=vulkan (real GPU)`;

function fail(msg: string): never {
  console.error(`starling: ${msg}`);
  process.exit(2);
}

function intOpt(v: string | undefined, name: string, def: number, lo: number, hi: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < lo || n > hi) fail(`--${name} must be an integer in [${lo}, ${hi}], got "${v}"`);
  return n;
}

async function serve(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      'data-dir': { type: 'string' },
      'data-root': { type: 'string', multiple: true },
      'heartbeat-ms': { type: 'string' },
      'heartbeat-timeout-ms': { type: 'string' },
    },
  });
  const dataRoots = (values['data-root'] ?? []).flatMap((v) => v.split(',')).filter((v) => v !== '');
  const hb = values['heartbeat-ms'];
  const hbTimeout = values['heartbeat-timeout-ms'];
  const s = await startServer({
    port: intOpt(values.port, 'port', 8080, 0, 65535),
    host: values.host ?? '127.0.0.1',
    dataDir: values['data-dir'] ?? '.starling',
    dataRoots,
    heartbeat: {
      intervalMs: hb === undefined ? undefined : intOpt(hb, 'heartbeat-ms', 0, MIN_HEARTBEAT_MS, 60_000),
      timeoutMs:
        hbTimeout === undefined
          ? undefined
          : intOpt(hbTimeout, 'heartbeat-timeout-ms', 0, 2 * MIN_HEARTBEAT_MS, MAX_HEARTBEAT_TIMEOUT_MS),
    },
  });
  console.log(`Starling coordinator on ${s.url}  (data in ${s.dataDir})`);
  console.log(`  donors open:   ${s.url}/`);
  // Logs get copied and shared: the token itself is never printed, only where it is kept.
  console.log(`  console:       ${s.url}/console  (paste the API token there)`);
  const kept = process.env.STARLING_TOKEN ? 'STARLING_TOKEN' : join(s.dataDir, 'token');
  console.log(`  ${tokenHint(s.token, kept, s.tokenCreated)}`);
  const roots = [s.dataDir, ...dataRoots.map((r) => resolve(r))].join(', ');
  console.log(`  file: data sources allowed under: ${roots}`);
  s.runner.on('round', (r: RoundResult) => console.log(progressLine(r)));
  const stop = async () => {
    console.log('shutting down; running jobs resume at the next start');
    await s.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

async function fleet(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { url: { type: 'string' }, donors: { type: 'string' }, verbose: { type: 'boolean' } },
  });
  const url = values.url ?? 'http://127.0.0.1:8080';
  const f = await Fleet.launch({ url, donors: intOpt(values.donors, 'donors', 2, 1, 64), verbose: values.verbose });
  console.log(`fleet of ${f.donors.length} headless donors on ${url}; Ctrl-C to stop`);
  const stop = async () => {
    await f.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

function progressLine(r: RoundResult): string {
  return (
    `round ${String(r.round + 1).padStart(3)}  val ${r.valLoss.toFixed(4)}  ` +
    `train ${r.trainLoss === null ? '   —  ' : r.trainLoss.toFixed(4)}  donors ${r.accepted}/${r.assigned}` +
    `${r.late ? ` late ${r.late}` : ''}${r.dropped ? ` dropped ${r.dropped}` : ''}` +
    `${r.flagged ? ` outliers ${r.flagged}` : ''}${r.refused ? ' REFUSED' : ''}  ` +
    `up ${fmtBytes(r.bytesUp)}  down ${fmtBytes(r.bytesDown)}  ${((r.endedAt - r.startedAt) / 1000).toFixed(1)}s`
  );
}

async function demo(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string' },
      rounds: { type: 'string' },
      donors: { type: 'string' },
      port: { type: 'string' },
      'data-dir': { type: 'string' },
      verbose: { type: 'boolean' },
    },
  });
  const type = values.model ?? 'mlp';
  if (type !== 'mlp' && type !== 'gpt') fail(`--model must be "mlp" or "gpt", got "${type}"`);
  const rounds = intOpt(values.rounds, 'rounds', 20, 1, 10000);
  const donors = intOpt(values.donors, 'donors', 2, 1, 16);
  console.log(`starting a coordinator and ${donors} headless donors`);
  // What the same rounds would have sent as f32 weights both ways every local step (8 bytes a parameter).
  let denseBytes = 0;
  let params = 0;
  let localSteps = 1;
  try {
    const r = await runLocalJob({
      body:
        type === 'gpt'
          ? { name: 'demo-gpt', model: DEMO_GPT_JOB.model, train: { ...DEMO_GPT_JOB.train, rounds, minDonors: donors } }
          : { name: 'demo', train: { rounds, minDonors: donors } },
      donors,
      dataDir: values['data-dir'],
      port: intOpt(values.port, 'port', 0, 0, 65535),
      verbose: values.verbose,
      onCreated: (job) => {
        const t = job.spec.train;
        params = job.params;
        localSteps = t.localSteps;
        console.log(
          `job ${job.id}: ${job.params.toLocaleString('en-US')} parameters; codec ` +
            `${t.codec} up, ${t.downCodec} down; ${t.localSteps} local steps per round`,
        );
      },
      onStart: (v) => console.log(`initial validation loss ${v.toFixed(4)}; waiting for ${donors} donors`),
      onRound: (x) => {
        denseBytes += 8 * params * localSteps * x.assigned;
        console.log(progressLine(x));
      },
    });
    const last = r.rounds.at(-1);
    const bytesUp = r.rounds.reduce((a, x) => a + x.bytesUp, 0);
    const bytesDown = r.rounds.reduce((a, x) => a + x.bytesDown, 0);
    const t = r.job.spec.train;
    const summary = {
      initialValLoss: r.initialValLoss,
      finalValLoss: last?.valLoss ?? NaN,
      rounds: last ? last.round + 1 : 0,
      donors: r.donors.length,
      bytesUp,
      bytesDown,
      codec: t.codec,
      downCodec: t.downCodec,
      localSteps: t.localSteps,
      /** f32 both ways every step ÷ what was sent (snapshots and assignments included). */
      compressionRatio: Math.round(denseBytes / Math.max(1, bytesUp + bytesDown)),
      /** The same after the first round, which also carries each donor's first f32 snapshot. */
      roundRatio: Math.round(ratioAfterFirst(r.rounds, params, t.localSteps)),
      wallSeconds: r.wallSeconds,
      checkpoint: r.checkpoint,
    };
    const drop = (1 - summary.finalValLoss / summary.initialValLoss) * 100;
    console.log(
      `\ndone: validation loss ${summary.initialValLoss.toFixed(4)} → ${summary.finalValLoss.toFixed(4)} ` +
        `(${drop.toFixed(1)}% lower) in ${summary.rounds} rounds with ${summary.donors} donors; ` +
        `sent up ${fmtBytes(bytesUp)}, down ${fmtBytes(bytesDown)} (${t.codec}, H = ${t.localSteps}: ` +
        `${summary.compressionRatio}× fewer bytes than f32 weights ` +
        `both ways every step, ${summary.roundRatio}× after the first ` +
        `round's snapshots); ${summary.wallSeconds}s`,
    );
    console.log(`checkpoint (safetensors): ${summary.checkpoint} (data in ${r.dataDir})`);
    console.log(JSON.stringify(summary));
    process.exit(0);
  } catch (e) {
    fail(e instanceof Error ? e.message : String(e));
  }
}

/** f32 both ways every local step ÷ bytes sent, over the rounds after the first. */
function ratioAfterFirst(rounds: RoundResult[], params: number, localSteps: number): number {
  const later = rounds.filter((x) => x.round > 0);
  const sent = later.reduce((a, x) => a + x.bytesUp + x.bytesDown, 0);
  return sent > 0 ? later.reduce((a, x) => a + 8 * params * localSteps * x.assigned, 0) / sent : 0;
}

async function sample(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      checkpoint: { type: 'string' },
      prompt: { type: 'string' },
      tokens: { type: 'string' },
      temperature: { type: 'string' },
      'top-k': { type: 'string' },
      seed: { type: 'string' },
    },
  });
  if (!values.checkpoint) fail("sample needs --checkpoint FILE (a job's latest.safetensors)");
  const temperature = values.temperature === undefined ? 0.8 : Number(values.temperature);
  if (!Number.isFinite(temperature) || temperature < 0)
    fail(`--temperature must be a number ≥ 0, got "${values.temperature}"`);
  const out = await sampleFromCheckpoint({
    checkpoint: values.checkpoint,
    prompt: values.prompt ?? '',
    tokens: intOpt(values.tokens, 'tokens', 200, 0, 100_000),
    temperature,
    topK: values['top-k'] === undefined ? undefined : intOpt(values['top-k'], 'top-k', 0, 0, 1_000_000),
    seed: intOpt(values.seed, 'seed', 1, 0, 0xffffffff),
  });
  console.log(out.text);
}

async function train(args: string[]): Promise<void> {
  const r = await trainLocal({ ...parseTrainArgs(args), log: (l) => console.log(l) });
  console.log(`\nsample:\n${r.sample}\n`);
  const { sample: _s, ...summary } = r;
  console.log(JSON.stringify(summary));
}

const [cmd, ...rest] = process.argv.slice(2);
const commands: Record<string, (a: string[]) => Promise<void>> = { serve, fleet, demo, train, sample };
if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
  console.log(USAGE);
  process.exit(cmd ? 0 : 2);
}
const run = commands[cmd];
if (!run) fail(`unknown command "${cmd}"\n${USAGE}`);
run(rest).catch((e) => fail(e instanceof Error ? e.message : String(e)));
