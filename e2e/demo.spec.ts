import { test, expect } from '@playwright/test';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mlpParamSpecs } from '../src/model/mlp-spec';
import { DEFAULT_JOB } from '../coordinator/job-spec';

// The quick start's demo, run as a user runs it: a child process whose last line is the JSON summary.
const TITLE = 'the demo trains with 2 donors, cuts validation loss by ≥20% and writes a valid safetensors checkpoint';
test(TITLE, async () => {
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'cli/cli.ts', 'demo', '--rounds', '8'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(stdout) : reject(new Error(`demo exited ${code}\n${stdout}\n${stderr}`)),
    );
  });
  const lines = out.trim().split('\n');
  expect(lines.filter((l) => /^round +\d+ +val /.test(l))).toHaveLength(8);
  const summary = JSON.parse(lines[lines.length - 1]) as Record<string, number | string>;
  expect(Object.keys(summary)).toEqual([
    'initialValLoss',
    'finalValLoss',
    'rounds',
    'donors',
    'bytesUp',
    'bytesDown',
    'codec',
    'downCodec',
    'localSteps',
    'compressionRatio',
    'roundRatio',
    'wallSeconds',
    'checkpoint',
  ]);
  // The default job is the compression benchmark's best arm (coordinator/job-spec.ts DEFAULT_JOB).
  expect(summary.codec).toBe(DEFAULT_JOB.train.codec);
  expect(summary.localSteps).toBe(DEFAULT_JOB.train.localSteps);

  expect(summary.rounds).toBe(8);
  expect(summary.donors).toBe(2);
  expect(summary.finalValLoss as number).toBeLessThanOrEqual(0.8 * (summary.initialValLoss as number));
  expect(summary.bytesUp as number).toBeGreaterThan(0);
  expect(summary.bytesDown as number).toBeGreaterThan(0);

  // Parse the checkpoint by the format's rules alone (not through our reader).
  const bytes = readFileSync(summary.checkpoint);
  const headerLen = Number(bytes.readBigUInt64LE(0));
  expect((8 + headerLen) % 8).toBe(0);
  // Every key is a tensor entry except __metadata__, a string-to-string map.
  const header = JSON.parse(bytes.subarray(8, 8 + headerLen).toString('utf8')) as Record<string, unknown>;
  const data = bytes.subarray(8 + headerLen);
  const meta = header.__metadata__ as Record<string, string>;
  const vocab = JSON.parse(meta.vocab) as string[];
  const specs = mlpParamSpecs({ vocab: vocab.length, context: 8, embed: 16, hidden: 128 });
  expect(
    Object.keys(header)
      .filter((k) => k !== '__metadata__')
      .sort(),
  ).toEqual(specs.map((s) => s.name).sort());
  // The reported ratio: f32 both ways every local step (8 rounds × 2 donors) over what was really sent.
  const params = specs.reduce((a, t) => a + t.size, 0);
  const dense = 8 * params * (summary.localSteps as number) * 8 * 2;
  const ratio = dense / ((summary.bytesUp as number) + (summary.bytesDown as number));
  expect(Math.abs((summary.compressionRatio as number) - ratio)).toBeLessThanOrEqual(0.5);
  expect(ratio).toBeGreaterThan(50);
  // After the first round (which carries the f32 snapshots) the default job's ratio is far higher.
  expect(summary.roundRatio as number).toBeGreaterThan(3 * ratio);
  for (const s of specs) {
    const t = header[s.name] as { dtype: string; shape: number[]; data_offsets: [number, number] };
    expect(t.dtype).toBe('F32');
    expect(t.shape).toEqual(s.shape);
    const [b, e] = t.data_offsets;
    expect(e - b).toBe(s.size * 4);
    const values = new Float32Array(data.buffer.slice(data.byteOffset + b, data.byteOffset + e));
    expect(values.every(Number.isFinite)).toBe(true);
  }
});
