import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildJobData,
  CorpusError,
  dataRoots,
  setDataRoots,
  decodeText,
  loadCorpus,
  prepareJobData,
  sha256Hex,
  SHARED_DATA_DIR,
  sharedSourcePath,
} from './corpus';
import { MAX_CORPUS_BYTES, parseJobSpec } from './job-spec';
import { Store } from './store';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'starling-corpus-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('builtin:cmudict: dictionary lines, ~1 MB by default, spanning the alphabet, deterministic', async () => {
  const a = await loadCorpus('builtin:cmudict');
  const bytes = Buffer.byteLength(a.text);
  assert.ok(bytes <= 1_000_000 && bytes > 900_000, `default size ${bytes}`);
  const lines = a.text.trimEnd().split('\n');
  for (const l of lines.slice(0, 1000)) assert.match(l, /^[A-Z0-9'.\-_{}]+ {2}[A-Z]+[0-2]?( [A-Z]+[0-2]?)*$/, l);
  const initials = (ls: string[]) => new Set(ls.map((l) => l[0]).filter((c) => /[A-Z]/.test(c)));
  assert.equal(initials(lines).size, 26, 'the sample spans the whole alphabet');
  assert.match(a.description, /CMU Pronouncing Dictionary/);
  assert.equal((await loadCorpus('builtin:cmudict')).text, a.text);
  const small = await loadCorpus('builtin:cmudict', { maxBytes: 5000 });
  assert.ok(Buffer.byteLength(small.text) <= 5000);
  assert.ok(small.text.endsWith('\n'));
  assert.ok(initials(small.text.trimEnd().split('\n')).size > 20, 'small samples also span the alphabet');
});

test('builtin:cmudict with no cap gives the whole dictionary, every line once', async () => {
  const all = await loadCorpus('builtin:cmudict', { maxBytes: MAX_CORPUS_BYTES });
  assert.match(all.description, /\(all \d+ entries\)/);
  assert.ok(all.text.includes('\nABANDON  AH0 B AE1 N D AH0 N\n'));
  assert.ok(/^[\x20-\x7e\n]+$/.test(all.text), 'plain ASCII');
});

test('file: reads UTF-8 text, drops a BOM, normalises CRLF and caps at whole lines', async (t) => {
  const dir = tempDir(t);
  const p = join(dir, 'in.txt');
  writeFileSync(p, '\uFEFFline one\r\nlíne two 🙂\r\nline three\r\n');
  const c = await loadCorpus(`file:${p}`);
  assert.equal(c.text, 'line one\nlíne two 🙂\nline three\n');
  const capped = await loadCorpus(`file:${p}`, { maxBytes: Buffer.byteLength('line one\nlíne two 🙂\nli') });
  assert.equal(capped.text, 'line one\nlíne two 🙂\n');
  assert.match(capped.description, /first \d+ of \d+ bytes/);
  // No newline to cut at: cut at a character boundary, never inside the emoji.
  writeFileSync(p, 'ab🙂cd');
  assert.equal((await loadCorpus(`file:${p}`, { maxBytes: 4 })).text, 'ab');
});

test('file: errors name the file and the problem', async (t) => {
  const dir = tempDir(t);
  const missing = join(dir, 'missing.txt');
  await assert.rejects(loadCorpus(`file:${missing}`), new RegExp(`file ${missing} does not exist`));
  await assert.rejects(loadCorpus(`file:${dir}`), /is not a regular file/);
  await assert.rejects(loadCorpus('file:'), /file: source needs a path/);
  const empty = join(dir, 'empty.txt');
  writeFileSync(empty, '');
  await assert.rejects(loadCorpus(`file:${empty}`), /is empty/);
  const blank = join(dir, 'blank.txt');
  writeFileSync(blank, ' \n\n ');
  await assert.rejects(loadCorpus(`file:${blank}`), /contains only whitespace/);
  const bin = join(dir, 'x.bin');
  writeFileSync(bin, Buffer.from([0x41, 0x42, 0x00, 0x43]));
  await assert.rejects(loadCorpus(`file:${bin}`), /looks binary \(NUL byte at offset 2\)/);
  const latin1 = join(dir, 'latin1.txt');
  writeFileSync(latin1, Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]));
  await assert.rejects(loadCorpus(`file:${latin1}`), /is not valid UTF-8 \(first bad byte at offset 3\)/);
  const big = join(dir, 'big.txt');
  writeFileSync(big, '');
  truncateSync(big, MAX_CORPUS_BYTES + 1); // sparse: no 32 MiB write
  await assert.rejects(loadCorpus(`file:${big}`), /is 33554433 bytes, over the 32 MiB limit/);
  await assert.rejects(loadCorpus('http://x'), /unknown data source "http:\/\/x"/);
  await assert.rejects(
    loadCorpus('builtin:cmudict', { maxBytes: 0 }),
    /maxBytes must be an integer in \[1, 33554432\], got 0/,
  );
  await assert.rejects(loadCorpus('builtin:cmudict', { maxBytes: 3 }), CorpusError);
});

test('decodeText finds the first invalid byte in several kinds of broken UTF-8', () => {
  const cases: [number[], number][] = [
    [[0x61, 0xc0, 0x80], 1], // overlong 2-byte
    [[0x61, 0x62, 0xe0, 0x80, 0x80], 2], // overlong 3-byte
    [[0xed, 0xa0, 0x80], 0], // surrogate
    [[0x61, 0xf4, 0x90, 0x80, 0x80], 1], // past U+10FFFF
    [[0x61, 0xe2, 0x82], 1], // truncated sequence
    [[0x80], 0], // lone continuation byte
  ];
  for (const [bytes, at] of cases) {
    assert.throws(() => decodeText(new Uint8Array(bytes), 'x'), new RegExp(`offset ${at}\\)`), bytes.join(','));
  }
});

test('upload: reads a stored upload; unknown ids are a clear error', async (t) => {
  const store = Store.open(tempDir(t));
  t.after(() => store.close());
  const rec = await store.saveUpload(new TextEncoder().encode('uploaded text\n'));
  const c = await loadCorpus(`upload:${rec.id}`, { store });
  assert.equal(c.text, 'uploaded text\n');
  await assert.rejects(
    loadCorpus('upload:nope', { store }),
    /unknown upload id "nope": upload the text with POST \/api\/uploads first/,
  );
  await assert.rejects(loadCorpus(`upload:${rec.id}`), /need the store/);
});

test('tiny shakespeare from ../shared/data loads as a file source', async (t) => {
  const path = join(process.cwd(), '..', 'shared', 'data', 'tinyshakespeare.txt');
  if (!existsSync(path)) {
    t.skip(`reference data absent: ${path} not found`);
    return;
  }
  const c = await loadCorpus(`file:${path}`, { maxBytes: 200_000 });
  assert.ok(Buffer.byteLength(c.text) <= 200_000);
  const data = buildJobData(parseJobSpec({}), c);
  assert.ok(data.tokenizer.size > 30 && data.tokenizer.size < 100);
  assert.equal(data.tokenizer.decode(data.train.subarray(0, 20)), c.text.slice(0, 20));
});

test('shared:<name> reads ../shared/data/<name>.txt, and says where it looked when the file is absent', async (t) => {
  assert.equal(sharedSourcePath('tinyshakespeare'), join(SHARED_DATA_DIR, 'tinyshakespeare.txt'));
  assert.equal(SHARED_DATA_DIR, join(process.cwd(), '..', 'shared', 'data'));
  await assert.rejects(loadCorpus('shared:no-such-corpus'), (e: unknown) => {
    assert.ok(e instanceof CorpusError);
    assert.match(
      e.message,
      /^shared:no-such-corpus: .*no-such-corpus\.txt not found\. The reference data sets are not part of Starling: .* or point at your copy with file:PATH$/,
    );
    return true;
  });
  await assert.rejects(loadCorpus('shared:../etc/passwd'), /shared: source needs a name of 1\.\.64 of a-z 0-9 _ -/);
  const path = sharedSourcePath('tinyshakespeare');
  if (!existsSync(path)) {
    t.skip(`reference data absent: ${path} not found`);
    return;
  }
  const c = await loadCorpus('shared:tinyshakespeare', { maxBytes: 50_000 });
  assert.ok(c.text.startsWith('First Citizen:\n'));
  assert.match(c.description, /tinyshakespeare\.txt: first \d+ of 1115394 bytes/);
});

test('buildJobData fits a GPT to the data: vocabulary, parameter limit, sequences of context + 1', () => {
  const text = 'to be or not to be, that is the question\n'.repeat(30);
  const spec = parseJobSpec({
    model: { type: 'gpt', context: 16, layers: 1, heads: 2, width: 16 },
    train: { shards: 4 },
  });
  const d = buildJobData(spec, { text, description: 't' });
  assert.equal(d.train.length + d.val.length, text.length);
  assert.throws(
    () =>
      buildJobData(parseJobSpec({ model: { type: 'gpt', layers: 96, width: 1024, heads: 8 } }), {
        text,
        description: 't',
      }),
    /^CorpusError: GPT 96 layers × width 1024, .*: [\d,]+ params: over the limit of 16,000,000 parameters a job may have/,
  );
  const wide = Array.from({ length: 4097 }, (_, i) => String.fromCodePoint(0x4e00 + i)).join('');
  assert.throws(
    () => buildJobData(spec, { text: wide, description: 't' }),
    /model.vocab must be an integer in \[2, 4096\], got 4097 \(the corpus has 4097 distinct characters\)/,
  );
  assert.throws(
    () =>
      buildJobData(parseJobSpec({ model: { type: 'gpt', context: 200, layers: 1, heads: 2, width: 16 } }), {
        text: text.slice(0, 300),
        description: 't',
      }),
    /corpus too small/,
  );
});

test('buildJobData checks vocabulary limits, shard sizes and the stored vocabulary', () => {
  const spec = parseJobSpec({ model: { context: 4 }, train: { shards: 3 }, data: { valFraction: 0.2 } });
  const text = 'abcdefghij'.repeat(10);
  const d = buildJobData(spec, { text, description: 't' });
  assert.equal(d.train.length + d.val.length, text.length);
  assert.equal(d.val.length, Math.round(text.length * 0.2));
  assert.equal(d.tokenizer.decode(d.val), text.slice(d.train.length));

  assert.throws(
    () => buildJobData(spec, { text: 'aaaaaaaaaaaaaaaaaaaa', description: 't' }),
    /model.vocab must be an integer in \[2, 4096\], got 1 \(the corpus has 1 distinct characters\)/,
  );
  const wide = Array.from({ length: 4097 }, (_, i) => String.fromCodePoint(0x4e00 + i)).join('');
  assert.throws(() => buildJobData(spec, { text: wide, description: 't' }), /model.vocab .* got 4097/);
  assert.throws(
    () => buildJobData(parseJobSpec({ model: { context: 4 }, train: { shards: 20 } }), { text, description: 't' }),
    /corpus too small for train.shards 20: 90 training tokens give shards of 4 tokens, each needs at least 5/,
  );
  assert.throws(() => buildJobData(spec, { text: 'abcdef', description: 't' }), /corpus too small: 6 tokens/);
  assert.throws(
    () => buildJobData(spec, { text: text + 'z', description: 't' }, d.tokenizer.vocab),
    /does not match the job's vocabulary: unknown character "z"/,
  );
});

test('dataRoots: every root must be an existing directory', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'f.txt'), 'x');
  assert.throws(
    () => dataRoots(dir, [join(dir, 'nope')]),
    /data root .*nope is not a usable directory: does not exist/,
  );
  assert.throws(() => dataRoots(dir, [join(dir, 'f.txt')]), /data root .*f\.txt is not a usable directory/);
  assert.equal(dataRoots(dir, [dir]).dirs.length, 1, 'duplicates collapse');
});

test('prepareJobData caches per job and refuses a corpus that changed since creation', async (t) => {
  const dir = tempDir(t);
  const store = Store.open(join(dir, 'db'));
  t.after(() => store.close());
  mkdirSync(join(dir, 'src'));
  const path = join(dir, 'src', 'c.txt');
  const text = 'the cat sat on the mat\n'.repeat(20);
  writeFileSync(path, text);
  const spec = parseJobSpec({ data: { source: `file:${path}` }, train: { shards: 2 } });
  const built = buildJobData(spec, await loadCorpus(spec.data.source));
  const job = store.createJob({ name: 'c', spec, vocab: [...built.tokenizer.vocab], corpusSha256: sha256Hex(text) });
  // A store nobody configured allows files in its own data directory only.
  await assert.rejects(prepareJobData(store, job), /is outside the allowed data roots \(.*db\); start the coordinator/);
  setDataRoots(store, dataRoots(join(dir, 'db'), [join(dir, 'src')]));
  const first = prepareJobData(store, job);
  assert.equal(prepareJobData(store, job), first, 'second call shares the first');
  const data = await first;
  assert.deepEqual(data.train, built.train);
  assert.deepEqual(data.val, built.val);

  const job2 = store.createJob({ name: 'c2', spec, vocab: [...built.tokenizer.vocab], corpusSha256: sha256Hex(text) });
  writeFileSync(path, text.replace('cat', 'hat'));
  await assert.rejects(
    prepareJobData(store, job2),
    /the corpus of job ".*" \(file:.*\) changed since the job was created/,
  );
  writeFileSync(path, text);
  assert.deepEqual((await prepareJobData(store, job2)).train, built.train, 'a failure is not cached');
});
