import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../src/util/rng';
import { mlpInit, mlpParamSpecs } from '../src/model/mlp-spec';
import { gptInit, gptParamSpecs } from '../src/model/gpt-spec';
import { convertToLowRank } from '../src/model/lowrank';
import type { GptModelConfig, MlpModelConfig } from '../src/model/model';
import {
  decodeSafetensors,
  encodeSafetensors,
  checkpointPaths,
  readCheckpointParams,
  loadLatestCheckpoint,
  MAX_HEADER_BYTES,
  paramsToTensors,
  readSafetensors,
  writeCheckpoint,
  writeSyncState,
  readSyncState,
  readModelCheckpoint,
  tensorsToParams,
  writeSafetensors,
  KEEP_VERSIONS,
  type Tensor,
} from './checkpoint';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'starling-ckpt-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function sampleTensors(seed = 1): Tensor[] {
  const rng = new Rng(seed);
  return [
    { name: 'a.weight', shape: [3, 5], data: rng.uniformArray(15) },
    { name: 'a.bias', shape: [3], data: rng.uniformArray(3) },
    { name: 'scalar', shape: [], data: rng.uniformArray(1) },
    { name: 'empty', shape: [0, 4], data: new Float32Array(0) },
  ];
}

/** Builds a file by hand from a header object and data bytes, for reader error cases. */
function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0), headerLen?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, headerLen ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

test('round trip keeps names, shapes, values and metadata', async (t) => {
  const path = join(tempDir(t), 'x.safetensors');
  const tensors = sampleTensors();
  await writeSafetensors(path, tensors, { step: '7', note: 'héllo' });
  const back = await readSafetensors(path);
  assert.deepEqual(back.metadata, { step: '7', note: 'héllo' });
  assert.deepEqual(back.tensors, tensors);
  assert.deepEqual(decodeSafetensors(readFileSync(path)), back, 'bytes and path give the same result');
  assert.deepEqual(readdirSync(join(path, '..')), ['x.safetensors'], 'no temp file is left behind');
});

test('format bytes: LE u64 header length, space-padded JSON, 8-byte aligned LE f32 data', () => {
  const tensors = sampleTensors(2);
  const bytes = encodeSafetensors(tensors, { k: 'v' });
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  assert.equal(n % 8, 0, 'header length is a multiple of 8');
  assert.equal((8 + n) % 8, 0, 'data starts 8-byte aligned');
  const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  assert.match(headerText, /^\{.*\} *$/s, 'JSON padded with spaces only');
  const header = JSON.parse(headerText);
  assert.deepEqual(header.__metadata__, { k: 'v' });
  let expectBegin = 0;
  for (const t of tensors) {
    const h = header[t.name];
    assert.equal(h.dtype, 'F32');
    assert.deepEqual(h.shape, t.shape);
    assert.deepEqual(h.data_offsets, [expectBegin, expectBegin + 4 * t.data.length]);
    for (let i = 0; i < t.data.length; i++) {
      assert.equal(view.getFloat32(8 + n + h.data_offsets[0] + 4 * i, true), t.data[i]);
    }
    expectBegin += 4 * t.data.length;
  }
  assert.equal(bytes.length, 8 + n + expectBegin);
});

test('writer rejects inconsistent tensors', () => {
  const d = new Float32Array(6);
  assert.throws(
    () => encodeSafetensors([{ name: 'w', shape: [2, 2], data: d }]),
    /shape \[2, 2\] \(4 values\) but 6 values/,
  );
  assert.throws(
    () =>
      encodeSafetensors([
        { name: 'w', shape: [6], data: d },
        { name: 'w', shape: [6], data: d },
      ]),
    /duplicate tensor name "w"/,
  );
  assert.throws(() => encodeSafetensors([{ name: '__metadata__', shape: [6], data: d }]), /invalid tensor name/);
  assert.throws(() => encodeSafetensors([{ name: 'w', shape: [-6], data: d }]), /invalid shape/);
  assert.throws(() => encodeSafetensors([], { n: 1 as unknown as string }), /metadata "n" must be a string/);
});

test('reader rejects every kind of bad file with a clear error', () => {
  const good = encodeSafetensors(sampleTensors(3));
  const f32 = (n: number) => new Uint8Array(4 * n);
  const cases: [string, Uint8Array, RegExp][] = [
    ['empty', new Uint8Array(0), /truncated: 0 bytes/],
    ['short length', new Uint8Array(5), /truncated: 5 bytes/],
    ['header past the end', good.subarray(0, 20), /truncated: header says \d+ bytes but only 12 follow/],
    ['data cut short', good.subarray(0, good.length - 4), /out of range|not covered/],
    [
      'header too large',
      rawFile({}, undefined, BigInt(MAX_HEADER_BYTES) + 1n),
      /header too large: 100000001 bytes, limit 100000000/,
    ],
    ['huge u64', rawFile({}, undefined, 0xffffffffffffffffn), /header too large/],
    ['bad JSON', rawFile('{"a": '), /header is not valid UTF-8 JSON/],
    ['array header', rawFile([]), /header must be a JSON object/],
    [
      'F16',
      rawFile({ w: { dtype: 'F16', shape: [2], data_offsets: [0, 4] } }, f32(1)),
      /tensor "w": unsupported dtype "F16", only F32/,
    ],
    [
      'bad shape',
      rawFile({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, f32(1)),
      /tensor "w": shape must be/,
    ],
    [
      'bad offsets',
      rawFile({ w: { dtype: 'F32', shape: [1], data_offsets: [0] } }, f32(1)),
      /data_offsets must be \[begin, end\]/,
    ],
    [
      'offsets past data',
      rawFile({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, f32(1)),
      /\[0, 8\] out of range of the 4 data bytes/,
    ],
    [
      'size mismatch',
      rawFile({ w: { dtype: 'F32', shape: [1], data_offsets: [0, 8] } }, f32(2)),
      /cover 8 bytes but shape \[1\] needs 4/,
    ],
    [
      'overlap',
      rawFile(
        {
          a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
          b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
        },
        f32(3),
      ),
      /tensor "b": data_offsets start at 4, expected 8/,
    ],
    ['gap', rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, f32(2)), /start at 4, expected 0/],
    [
      'trailing bytes',
      rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32(2)),
      /4 data bytes after the last tensor/,
    ],
    ['metadata not strings', rawFile({ __metadata__: { v: 1 } }), /__metadata__."v" must be a string/],
    ['entry not object', rawFile({ w: null }), /tensor "w": entry must be an object/],
  ];
  for (const [what, bytes, re] of cases) {
    assert.throws(() => decodeSafetensors(bytes), re, what);
  }
});

test('non-finite values are rejected only when asked', () => {
  const bytes = encodeSafetensors([{ name: 'w', shape: [3], data: new Float32Array([1, Number.NaN, 2]) }]);
  assert.ok(Number.isNaN(decodeSafetensors(bytes).tensors[0].data[1]));
  assert.throws(() => decodeSafetensors(bytes, { requireFinite: true }), /tensor "w": non-finite value NaN at index 1/);
});

test('reading from an unaligned buffer works', () => {
  const bytes = encodeSafetensors(sampleTensors(4));
  const shifted = new Uint8Array(bytes.length + 1);
  shifted.set(bytes, 1);
  assert.deepEqual(decodeSafetensors(shifted.subarray(1)).tensors, sampleTensors(4));
});

const cfg: MlpModelConfig = { type: 'mlp', vocab: 11, context: 3, embed: 4, hidden: 6 };

test('params ⇄ tensors use mlpParamSpecs names and PyTorch shapes', () => {
  const flat = mlpInit(cfg, 5);
  const tensors = paramsToTensors(cfg, flat);
  assert.deepEqual(
    tensors.map((t) => [t.name, t.shape]),
    mlpParamSpecs(cfg).map((s) => [s.name, s.shape]),
  );
  const back = tensorsToParams(cfg, decodeSafetensors(encodeSafetensors(tensors)).tensors);
  assert.deepEqual(back, flat);
  assert.throws(() => paramsToTensors(cfg, flat.subarray(1)), /expected \d+ parameters for this model, got/);
  assert.throws(() => tensorsToParams(cfg, tensors.slice(1)), /missing tensor "embedding.weight"/);
  const wrongShape = tensors.map((t) => (t.name === 'hidden.bias' ? { ...t, shape: [3, 2] } : t));
  assert.throws(
    () => tensorsToParams(cfg, wrongShape),
    /tensor "hidden.bias" has shape \[3, 2\], the model needs \[6\]/,
  );
  assert.throws(
    () => tensorsToParams(cfg, [...tensors, { name: 'extra', shape: [1], data: new Float32Array(1) }]),
    /unexpected tensor "extra"/,
  );
});

test('job checkpoints: versioned files, latest, pruning and loading', async (t) => {
  const dir = tempDir(t);
  assert.equal(await loadLatestCheckpoint(dir, 'job1', cfg), undefined, 'none before the first save');
  const saved: Float32Array[] = [];
  for (let v = 0; v <= 5; v++) {
    const p = mlpInit(cfg, 100 + v);
    saved.push(p);
    await writeCheckpoint(dir, 'job1', cfg, v, p, { name: 'test' });
  }
  const files = readdirSync(join(dir, 'jobs', 'job1')).sort();
  const kept = Array.from({ length: KEEP_VERSIONS }, (_, i) => `v${5 - i}.safetensors`);
  assert.deepEqual(files, ['latest.safetensors', ...kept].sort());
  const latest = await loadLatestCheckpoint(dir, 'job1', cfg);
  assert.equal(latest!.version, 5);
  assert.deepEqual(latest!.params, saved[5]);
  assert.equal(latest!.metadata.job_id, 'job1');
  assert.equal(latest!.metadata.name, 'test');
  assert.deepEqual(JSON.parse(latest!.metadata.model), cfg);
  const paths = checkpointPaths(dir, 'job1');
  assert.deepEqual(readFileSync(paths.latest), readFileSync(paths.version(5)));
  assert.deepEqual((await readCheckpointParams(paths.version(4), cfg))!.params, saved[4]);
  assert.throws(() => checkpointPaths(dir, '../etc'), /job id must be/);
  await assert.rejects(writeCheckpoint(dir, 'job1', cfg, -1, saved[0]), /version must be a non-negative integer/);
});

test('loading a damaged or mismatched checkpoint is an error, not a silent fresh start', async (t) => {
  const dir = tempDir(t);
  const paths = checkpointPaths(dir, 'j');
  await writeCheckpoint(dir, 'j', cfg, 1, mlpInit(cfg, 1));
  const other = { ...cfg, hidden: cfg.hidden + 1 };
  await assert.rejects(
    readCheckpointParams(paths.latest, other),
    /tensor "hidden.weight" has shape \[6, 12\], the model needs \[7, 12\]/,
  );
  const bytes = readFileSync(paths.latest);
  writeFileSync(paths.latest, bytes.subarray(0, bytes.length - 3));
  await assert.rejects(readCheckpointParams(paths.latest, cfg), new RegExp(`checkpoint ${paths.latest}: `));
  const nan = mlpInit(cfg, 2);
  nan[3] = Number.NaN;
  await writeCheckpoint(dir, 'j', cfg, 2, nan);
  await assert.rejects(readCheckpointParams(paths.latest, cfg), /non-finite value NaN/);
  await writeSafetensors(paths.latest, paramsToTensors(cfg, mlpInit(cfg, 3)));
  await assert.rejects(readCheckpointParams(paths.latest, cfg), /has no valid "version" in its metadata/);
});

test('GPT checkpoints round-trip, full and low rank, and identify their model', async (t) => {
  const dir = tempDir(t);
  const gpt: GptModelConfig = {
    type: 'gpt',
    vocab: 13,
    context: 8,
    layers: 3,
    heads: 2,
    width: 8,
    tiedEmbeddings: false,
  };
  const params = gptInit(gpt, 4);
  await writeCheckpoint(dir, 'g', gpt, 7, params, { vocab: JSON.stringify([]) });
  const paths = checkpointPaths(dir, 'g');
  const st = await readSafetensors(paths.latest);
  assert.deepEqual(
    st.tensors.map((x) => [x.name, x.shape]),
    gptParamSpecs(gpt).map((s) => [s.name, s.shape]),
  );
  assert.ok(
    st.tensors.some((x) => x.name === 'lm_head.weight'),
    'untied: lm_head is stored',
  );
  const back = await readCheckpointParams(paths.latest, gpt);
  assert.equal(back!.version, 7);
  assert.deepEqual(back!.params, params);
  const any = await readModelCheckpoint(paths.latest);
  assert.deepEqual(any.cfg, gpt, 'the model comes back from the metadata');
  assert.deepEqual(any.params, params);
  // Low rank: factor tensors instead of the middle block's weights.
  const low = convertToLowRank(gpt, params, 3, 'middle');
  const lowCfg = { type: 'gpt' as const, ...low.cfg };
  await writeCheckpoint(dir, 'g', lowCfg, 8, low.params);
  const lowBack = await readModelCheckpoint(paths.latest);
  assert.deepEqual(lowBack.cfg, lowCfg);
  assert.deepEqual(lowBack.params, low.params);
  assert.ok((await readSafetensors(paths.latest)).tensors.some((x) => x.name === 'h.1.mlp.c_fc.weight_u'));
  // A checkpoint read as another model is refused by tensor name.
  await assert.rejects(readCheckpointParams(paths.latest, gpt), /missing tensor "h\.1\.attn\.c_attn\.weight"/);
  await assert.rejects(readCheckpointParams(paths.latest, cfg), /missing tensor "embedding\.weight"/);
});

test('readModelCheckpoint: an MLP file without model metadata is inferred from its tensors; anything else is named', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'plain.safetensors');
  const flat = mlpInit(cfg, 9);
  await writeSafetensors(path, paramsToTensors(cfg, flat));
  const r = await readModelCheckpoint(path);
  assert.deepEqual(r.cfg, cfg);
  assert.deepEqual(r.params, flat);
  await writeSafetensors(path, paramsToTensors(cfg, flat), { model: '{"type":"gpt","vocab":11}' });
  await assert.rejects(
    readModelCheckpoint(path),
    /metadata "model" is not a valid model: model\.context must be an integer/,
  );
  const gpt: GptModelConfig = {
    type: 'gpt',
    vocab: 5,
    context: 2,
    layers: 1,
    heads: 1,
    width: 4,
    tiedEmbeddings: true,
  };
  await writeSafetensors(path, paramsToTensors(gpt, gptInit(gpt, 1)));
  await assert.rejects(
    readModelCheckpoint(path),
    /has no "model" in its metadata and is not a Starling MLP checkpoint/,
  );
});

test('sync state: round trip with and without momentum, missing file, and bad files named', async (t) => {
  const dir = tempDir(t);
  const paths = checkpointPaths(dir, 'j');
  const rng = new Rng(5);
  const n = 37;
  assert.equal(await readSyncState(paths.sync, n), undefined);
  const residual = rng.uniformArray(n, -1, 1);
  const momentum = rng.uniformArray(n, -1, 1);
  await writeSyncState(dir, 'j', { version: 4, momentum, residual });
  assert.deepEqual(await readSyncState(paths.sync, n), { version: 4, momentum, residual });
  await writeSyncState(dir, 'j', { version: 5, momentum: null, residual });
  assert.deepEqual(await readSyncState(paths.sync, n), { version: 5, momentum: null, residual });
  await assert.rejects(
    readSyncState(paths.sync, n + 1),
    new RegExp(`"downlink.residual" has shape \\[${n}\\], the model needs \\[${n + 1}\\]`),
  );
  const nan = residual.slice();
  nan[2] = NaN;
  await writeSyncState(dir, 'j', { version: 6, momentum: null, residual: nan });
  await assert.rejects(readSyncState(paths.sync, n), /sync state .*non-finite value NaN/);
  await writeSafetensors(paths.sync, [{ name: 'outer.momentum', shape: [n], data: momentum }], { version: '7' });
  await assert.rejects(readSyncState(paths.sync, n), /is missing tensor "downlink.residual"/);
  await writeSafetensors(
    paths.sync,
    [
      { name: 'downlink.residual', shape: [n], data: residual },
      { name: 'x', shape: [1], data: new Float32Array(1) },
    ],
    { version: '7' },
  );
  await assert.rejects(readSyncState(paths.sync, n), /has unexpected tensor "x"/);
  await writeSafetensors(paths.sync, [{ name: 'downlink.residual', shape: [n], data: residual }]);
  await assert.rejects(readSyncState(paths.sync, n), /has no valid "version" in its metadata/);
});
