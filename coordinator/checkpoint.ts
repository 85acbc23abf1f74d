// Checkpoints as safetensors (https://github.com/huggingface/safetensors), written and read here
// without a dependency, so `safetensors.torch.load_file` loads a job's weights directly:
//   [u64 LE header length N][N bytes of JSON header, space-padded to a multiple of 8][raw LE data]
// header = { name: { dtype, shape, data_offsets: [begin, end] relative to the data }, __metadata__: {str: str} }
// Per job: <dataDir>/jobs/<jobId>/v<version>.safetensors and latest.safetensors; old versions are pruned.
// Beside them, sync-latest.safetensors holds the coordinator's outer momentum and downlink residual
// (not model weights, so kept out of the weights file that torch loads).
import { mkdir, readFile, readdir, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { modelParamCount, modelParamSpecs, parseModelConfig, type ModelConfig } from '../src/model/model';
import { ID_RE } from './job-spec';

export interface Tensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export interface Safetensors {
  tensors: Tensor[];
  metadata: Record<string, string>;
}

/** Largest header we parse; safetensors' own reader uses the same 100 MB bound. */
export const MAX_HEADER_BYTES = 100_000_000;
/** How many versioned checkpoints a job keeps besides latest.safetensors. */
export const KEEP_VERSIONS = 3;

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function product(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Serialises tensors (F32) and string metadata into safetensors bytes. */
export function encodeSafetensors(tensors: Tensor[], metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new SafetensorsError(`metadata "${k}" must be a string, got ${typeof v}`);
  }
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    if (!t.name || t.name === '__metadata__')
      throw new SafetensorsError(`invalid tensor name ${JSON.stringify(t.name)}`);
    if (Object.hasOwn(header, t.name)) throw new SafetensorsError(`duplicate tensor name "${t.name}"`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(`tensor "${t.name}" has an invalid shape [${t.shape.join(', ')}]`);
    }
    if (product(t.shape) !== t.data.length) {
      throw new SafetensorsError(
        `tensor "${t.name}" has shape [${t.shape.join(', ')}] (${product(t.shape)} values) but ${t.data.length} values`,
      );
    }
    const bytes = t.data.length * 4;
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  const jsonBytes = new TextEncoder().encode(json);
  // Pad with spaces so the data starts 8-byte aligned (the format's recommendation, and what the
  // reference writer does), letting readers map the data without copying.
  const n = Math.ceil(jsonBytes.length / 8) * 8;
  json += ' '.repeat(n - jsonBytes.length);
  const out = new Uint8Array(8 + n + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(n), true);
  out.set(new TextEncoder().encode(json), 8);
  let at = 8 + n;
  for (const t of tensors) {
    if (LITTLE_ENDIAN) {
      out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    } else {
      for (let i = 0; i < t.data.length; i++) view.setFloat32(at + 4 * i, t.data[i], true);
    }
    at += t.data.byteLength;
  }
  return out;
}

export interface DecodeOptions {
  /** Reject NaN/Infinity values (a diverged job should not be resumed from). */
  requireFinite?: boolean;
}

/** Parses and validates safetensors bytes (F32 tensors only). */
export function decodeSafetensors(bytes: Uint8Array, opts: DecodeOptions = {}): Safetensors {
  if (bytes.length < 8)
    throw new SafetensorsError(`truncated: ${bytes.length} bytes, the 8-byte header length is missing`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = view.getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(`header too large: ${n64} bytes, limit ${MAX_HEADER_BYTES}`);
  }
  const n = Number(n64);
  if (8 + n > bytes.length) {
    throw new SafetensorsError(`truncated: header says ${n} bytes but only ${bytes.length - 8} follow`);
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new SafetensorsError(`header is not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new SafetensorsError('header must be a JSON object');
  }
  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;
  let metadata: Record<string, string> = {};
  const entries: { name: string; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (info === null || typeof info !== 'object' || Array.isArray(info)) {
        throw new SafetensorsError('__metadata__ must be an object of strings');
      }
      for (const [k, v] of Object.entries(info)) {
        if (typeof v !== 'string') throw new SafetensorsError(`__metadata__."${k}" must be a string, got ${typeof v}`);
      }
      metadata = info as Record<string, string>;
      continue;
    }
    const t = info as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    if (t === null || typeof t !== 'object') throw new SafetensorsError(`tensor "${name}": entry must be an object`);
    if (t.dtype !== 'F32') {
      throw new SafetensorsError(
        `tensor "${name}": unsupported dtype ${JSON.stringify(t.dtype)}, only F32 is supported`,
      );
    }
    const shape = t.shape;
    if (!Array.isArray(shape) || !shape.every((d): d is number => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(`tensor "${name}": shape must be an array of non-negative integers`);
    }
    const off = t.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(`tensor "${name}": data_offsets must be [begin, end] non-negative integers`);
    }
    const [begin, end] = off as [number, number];
    if (begin > end || end > dataLen) {
      throw new SafetensorsError(
        `tensor "${name}": data_offsets [${begin}, ${end}] out of range of the ${dataLen} data bytes`,
      );
    }
    if (end - begin !== product(shape) * 4) {
      throw new SafetensorsError(
        `tensor "${name}": data_offsets cover ${end - begin} bytes ` +
          `but shape [${shape.join(', ')}] needs ${product(shape) * 4}`,
      );
    }
    entries.push({ name, shape, begin, end });
  }
  // Like the reference reader: the tensors must tile the data exactly, with no overlap and no holes.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin);
  let expect = 0;
  for (const e of sorted) {
    if (e.begin !== expect) {
      throw new SafetensorsError(
        `tensor "${e.name}": data_offsets start at ${e.begin}, expected ${expect} (overlap or gap)`,
      );
    }
    expect = e.end;
  }
  if (expect !== dataLen)
    throw new SafetensorsError(`${dataLen - expect} data bytes after the last tensor are not covered`);

  const tensors: Tensor[] = entries.map((e) => {
    const data = new Float32Array((e.end - e.begin) / 4);
    if (LITTLE_ENDIAN) {
      // Copy: the source may not be 4-byte aligned (Node Buffers come from a shared pool).
      new Uint8Array(data.buffer).set(bytes.subarray(dataStart + e.begin, dataStart + e.end));
    } else {
      for (let i = 0; i < data.length; i++) data[i] = view.getFloat32(dataStart + e.begin + 4 * i, true);
    }
    if (opts.requireFinite) {
      const bad = data.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) throw new SafetensorsError(`tensor "${e.name}": non-finite value ${data[bad]} at index ${bad}`);
    }
    return { name: e.name, shape: e.shape, data };
  });
  return { tensors, metadata };
}

async function writeAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
}

/** Writes a safetensors file atomically (temp file then rename: readers never see half a file). */
export async function writeSafetensors(
  path: string,
  tensors: Tensor[],
  metadata: Record<string, string> = {},
): Promise<void> {
  await writeAtomic(path, encodeSafetensors(tensors, metadata));
}

/** Reads and validates a safetensors file (or bytes already in memory). */
export async function readSafetensors(source: string | Uint8Array, opts: DecodeOptions = {}): Promise<Safetensors> {
  return decodeSafetensors(typeof source === 'string' ? await readFile(source) : source, opts);
}

/** Splits the flat parameter vector into named tensors with PyTorch shapes (views, not copies). */
export function paramsToTensors(cfg: ModelConfig, flat: Float32Array): Tensor[] {
  const count = modelParamCount(cfg);
  if (flat.length !== count) throw new RangeError(`expected ${count} parameters for this model, got ${flat.length}`);
  return modelParamSpecs(cfg).map((s) => ({
    name: s.name,
    shape: s.shape,
    data: flat.subarray(s.offset, s.offset + s.size),
  }));
}

/** Reassembles the flat parameter vector, checking that every tensor is present with its shape. */
export function tensorsToParams(cfg: ModelConfig, tensors: Tensor[]): Float32Array {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const specs = modelParamSpecs(cfg);
  const out = new Float32Array(modelParamCount(cfg));
  for (const s of specs) {
    const t = byName.get(s.name);
    if (!t) throw new SafetensorsError(`checkpoint is missing tensor "${s.name}"`);
    if (t.shape.length !== s.shape.length || t.shape.some((d, i) => d !== s.shape[i])) {
      throw new SafetensorsError(
        `tensor "${s.name}" has shape [${t.shape.join(', ')}], the model needs [${s.shape.join(', ')}]`,
      );
    }
    out.set(t.data, s.offset);
  }
  const extra = tensors.find((t) => !specs.some((s) => s.name === t.name));
  if (extra) throw new SafetensorsError(`checkpoint has unexpected tensor "${extra.name}"`);
  return out;
}

// ---- per-job checkpoint files ----

export interface CheckpointPaths {
  /** <dataDir>/jobs/<jobId> */
  dir: string;
  /** The newest version, replaced atomically on every save. */
  latest: string;
  /** The file of one version. */
  version(v: number): string;
  /** The coordinator's synchronisation state of the latest version (writeSyncState). */
  sync: string;
}

export function checkpointPaths(dataDir: string, jobId: string): CheckpointPaths {
  if (!ID_RE.test(jobId))
    throw new RangeError(`job id must be 1..64 characters of A-Z a-z 0-9 _ -, got ${JSON.stringify(jobId)}`);
  const dir = join(dataDir, 'jobs', jobId);
  return {
    dir,
    latest: join(dir, 'latest.safetensors'),
    version: (v) => join(dir, `v${v}.safetensors`),
    sync: join(dir, 'sync-latest.safetensors'),
  };
}

const VERSION_FILE = /^v(\d+)\.safetensors$/;

/** The metadata `model` entry: the whole ModelConfig (type included) as JSON, so a file identifies its model. */
export function modelMetadata(cfg: ModelConfig): string {
  return JSON.stringify(cfg);
}

/**
 * Saves version `version` of a job's weights as v<version>.safetensors and latest.safetensors,
 * then prunes all but the newest KEEP_VERSIONS versioned files. Metadata records the job, the
 * version and the model (modelMetadata) so that a file identifies itself. Returns the versioned path.
 */
export async function writeCheckpoint(
  dataDir: string,
  jobId: string,
  cfg: ModelConfig,
  version: number,
  params: Float32Array,
  metadata: Record<string, string> = {},
): Promise<string> {
  if (!Number.isSafeInteger(version) || version < 0)
    throw new RangeError(`version must be a non-negative integer, got ${version}`);
  const paths = checkpointPaths(dataDir, jobId);
  await mkdir(paths.dir, { recursive: true });
  const bytes = encodeSafetensors(paramsToTensors(cfg, params), {
    ...metadata,
    format: 'pt',
    job_id: jobId,
    version: String(version),
    model: modelMetadata(cfg),
  });
  await writeAtomic(paths.version(version), bytes);
  await writeAtomic(paths.latest, bytes);
  const versions = (await readdir(paths.dir))
    .map((f) => VERSION_FILE.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => b - a);
  for (const v of versions.slice(KEEP_VERSIONS)) await unlink(paths.version(v)).catch(() => {});
  return paths.version(version);
}

export interface LoadedCheckpoint {
  version: number;
  params: Float32Array;
  metadata: Record<string, string>;
}

/**
 * Reads a checkpoint written by writeCheckpoint as flat parameters for `cfg`. Resolves undefined
 * when the file does not exist; a damaged, non-finite or mismatched file is an error (resuming
 * from it, or silently from fresh weights, would both be wrong).
 */
export async function readCheckpointParams(path: string, cfg: ModelConfig): Promise<LoadedCheckpoint | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  let st: Safetensors;
  try {
    st = decodeSafetensors(bytes, { requireFinite: true });
  } catch (e) {
    throw new SafetensorsError(`checkpoint ${path}: ${(e as Error).message}`);
  }
  const version = metadataVersion(st, `checkpoint ${path}`);
  return { version, params: tensorsToParams(cfg, st.tensors), metadata: st.metadata };
}

/** The `version` a file's metadata records; a SafetensorsError naming `what` when it is missing or not an integer. */
function metadataVersion(st: Safetensors, what: string): number {
  const version = Number(st.metadata.version);
  if (!/^\d+$/.test(st.metadata.version ?? '') || !Number.isSafeInteger(version)) {
    throw new SafetensorsError(`${what} has no valid "version" in its metadata`);
  }
  return version;
}

/** The coordinator's state between rounds at `version`: outer momentum (null: none yet) and downlink residual. */
export interface SyncCheckpoint {
  version: number;
  momentum: Float32Array | null;
  residual: Float32Array;
}

const MOMENTUM = 'outer.momentum';
const RESIDUAL = 'downlink.residual';

/** Saves the sync state of `version` atomically (write it after the weights of that version). */
export async function writeSyncState(dataDir: string, jobId: string, s: SyncCheckpoint): Promise<void> {
  if (!Number.isSafeInteger(s.version) || s.version < 0)
    throw new RangeError(`version must be a non-negative integer, got ${s.version}`);
  const paths = checkpointPaths(dataDir, jobId);
  await mkdir(paths.dir, { recursive: true });
  const tensors: Tensor[] = [{ name: RESIDUAL, shape: [s.residual.length], data: s.residual }];
  if (s.momentum) tensors.push({ name: MOMENTUM, shape: [s.momentum.length], data: s.momentum });
  await writeSafetensors(paths.sync, tensors, { job_id: jobId, version: String(s.version) });
}

/**
 * Reads the sync state for an n-parameter model; undefined when there is none. A damaged file, a
 * non-finite value or a wrong length is a SafetensorsError naming it.
 */
export async function readSyncState(path: string, n: number): Promise<SyncCheckpoint | undefined> {
  let st: Safetensors;
  try {
    st = await readSafetensors(path, { requireFinite: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SafetensorsError(`sync state ${path}: ${(e as Error).message}`);
  }
  const version = metadataVersion(st, `sync state ${path}`);
  const get = (name: string) => {
    const t = st.tensors.find((x) => x.name === name);
    if (t && (t.shape.length !== 1 || t.shape[0] !== n))
      throw new SafetensorsError(
        `sync state ${path}: "${name}" has shape [${t.shape.join(', ')}], the model needs [${n}]`,
      );
    return t?.data ?? null;
  };
  const residual = get(RESIDUAL);
  if (!residual) throw new SafetensorsError(`sync state ${path} is missing tensor "${RESIDUAL}"`);
  const extra = st.tensors.find((t) => t.name !== RESIDUAL && t.name !== MOMENTUM);
  if (extra) throw new SafetensorsError(`sync state ${path} has unexpected tensor "${extra.name}"`);
  return { version, momentum: get(MOMENTUM), residual };
}

/** The job's latest checkpoint, or undefined when none was written yet. */
export function loadLatestCheckpoint(
  dataDir: string,
  jobId: string,
  cfg: ModelConfig,
): Promise<LoadedCheckpoint | undefined> {
  return readCheckpointParams(checkpointPaths(dataDir, jobId).latest, cfg);
}

/**
 * The model a checkpoint holds: its metadata's `model` (parsed and validated, MLP or GPT). A file
 * without one (written by another tool) is read as an MLP when its tensors have the MLP's names;
 * the MLP's shape follows from them, the GPT's does not (heads are not in any tensor shape).
 */
export function checkpointModel(st: Safetensors, what: string): ModelConfig {
  if (st.metadata.model !== undefined) {
    try {
      return parseModelConfig(JSON.parse(st.metadata.model));
    } catch (e) {
      throw new SafetensorsError(`${what}: metadata "model" is not a valid model: ${(e as Error).message}`);
    }
  }
  const byName = new Map(st.tensors.map((t) => [t.name, t]));
  const emb = byName.get('embedding.weight');
  const hid = byName.get('hidden.weight');
  if (!emb || !hid || emb.shape.length !== 2 || hid.shape.length !== 2) {
    throw new SafetensorsError(
      `${what} has no "model" in its metadata and is not a Starling ` +
        `MLP checkpoint (no embedding.weight / hidden.weight)`,
    );
  }
  const [V, D] = emb.shape;
  const [H, KD] = hid.shape;
  if (D === 0 || KD % D !== 0)
    throw new SafetensorsError(`${what}: hidden.weight's ${KD} inputs are not a multiple of the embedding width ${D}`);
  try {
    return parseModelConfig({ type: 'mlp', vocab: V, context: KD / D, embed: D, hidden: H });
  } catch (e) {
    throw new SafetensorsError(`${what}: ${(e as Error).message}`);
  }
}

/** Reads any Starling checkpoint (finite values required) with the model it holds. */
export async function readModelCheckpoint(
  path: string,
): Promise<{ cfg: ModelConfig; params: Float32Array; metadata: Record<string, string> }> {
  const st = await readSafetensors(path, { requireFinite: true });
  const cfg = checkpointModel(st, path);
  return { cfg, params: tensorsToParams(cfg, st.tensors), metadata: st.metadata };
}
