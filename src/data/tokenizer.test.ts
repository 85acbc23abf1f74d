import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CharTokenizer } from './tokenizer';

test('vocabulary is the sorted distinct code points, including astral characters', () => {
  const text = 'hello, wörld 🙂!\nhello';
  const tok = CharTokenizer.fromText(text);
  const distinct = [...new Set(Array.from(text))];
  assert.equal(tok.size, distinct.length);
  const cps = tok.vocab.map((c) => c.codePointAt(0)!);
  for (let i = 1; i < cps.length; i++) assert.ok(cps[i] > cps[i - 1], 'strictly increasing code points');
  assert.ok(tok.vocab.includes('🙂'));
});

test('encode/decode round trip and ids index the vocabulary', () => {
  const text = 'abc 🙂 cba\n\tÆ';
  const tok = CharTokenizer.fromText(text);
  const ids = tok.encode(text);
  assert.equal(ids.length, Array.from(text).length);
  assert.equal(tok.decode(ids), text);
  assert.deepEqual(
    Array.from(ids, (i) => tok.vocab[i]),
    Array.from(text),
  );
});

test('JSON round trip gives identical encodings', () => {
  const text = 'The quick brown fox — jumps 🦊';
  const tok = CharTokenizer.fromText(text);
  const again = CharTokenizer.fromJSON(JSON.parse(JSON.stringify(tok)));
  assert.deepEqual(again.vocab, tok.vocab);
  assert.deepEqual(again.encode(text), tok.encode(text));
  assert.deepEqual(CharTokenizer.fromJSON([...tok.vocab]).vocab, tok.vocab);
});

test('unknown characters, bad ids and bad JSON give clear errors', () => {
  const tok = CharTokenizer.fromText('abc');
  assert.throws(() => tok.encode('abz'), /unknown character "z" \(U\+007A\) at index 2.*3-character vocabulary/);
  assert.throws(() => tok.decode([0, 3]), /token id 3 at position 1 is outside the vocabulary \[0, 2\]/);
  assert.throws(() => tok.decode([1.5]), /token id 1.5/);
  assert.throws(() => CharTokenizer.fromText(''), /empty text/);
  assert.throws(() => CharTokenizer.fromJSON({ type: 'bpe', vocab: ['a'] }), /must be \{ type: "char"/);
  assert.throws(() => CharTokenizer.fromJSON(['a', 'bc']), /vocab\[1\] must be exactly one character, got "bc"/);
  assert.throws(() => CharTokenizer.fromJSON(['b', 'a']), /strictly sorted.*vocab\[1\]/);
  assert.throws(() => CharTokenizer.fromJSON(['a', 'a']), /strictly sorted/);
  assert.throws(() => CharTokenizer.fromJSON([]), /1\.\.65536 entries, got 0/);
  assert.throws(() => CharTokenizer.fromJSON(['a', 7]), /vocab\[1\]/);
});
