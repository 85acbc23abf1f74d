import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateToken, MIN_TOKEN_LENGTH, tokenMatches } from './auth';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'starling-auth-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('first start creates an owner-only token file; later starts reuse it', (t) => {
  const dir = join(tempDir(t), 'nested', 'data');
  const first = loadOrCreateToken(dir);
  assert.equal(first.created, true);
  assert.match(first.token, /^[0-9a-f]{64}$/);
  const path = join(dir, 'token');
  assert.equal(readFileSync(path, 'utf8').trim(), first.token);
  if (process.platform !== 'win32') assert.equal(statSync(path).mode & 0o777, 0o600);
  const second = loadOrCreateToken(dir);
  assert.deepEqual(second, { token: first.token, created: false });
  assert.notEqual(loadOrCreateToken(tempDir(t)).token, first.token, 'each data directory gets its own random token');
});

test('STARLING_TOKEN wins over the file and is checked', (t) => {
  const dir = tempDir(t);
  const env = 'e'.repeat(MIN_TOKEN_LENGTH);
  assert.deepEqual(loadOrCreateToken(dir, env), { token: env, created: false });
  assert.throws(
    () => loadOrCreateToken(dir, 'short'),
    /STARLING_TOKEN must be 16..1024 characters without whitespace, got 5 characters/,
  );
  assert.throws(() => loadOrCreateToken(dir, 'has whitespace inside it'), /STARLING_TOKEN must be/);
  assert.equal(loadOrCreateToken(dir, '').created, true, 'an empty variable counts as unset');
});

test('a damaged token file is an error naming the file', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'token'), '\n');
  assert.throws(
    () => loadOrCreateToken(dir),
    new RegExp(`token file ${join(dir, 'token')} must be 16..1024 characters`),
  );
});

test('tokenMatches accepts only the exact token', () => {
  const token = 'a'.repeat(64);
  assert.equal(tokenMatches(token, token), true);
  assert.equal(tokenMatches(token.slice(1), token), false);
  assert.equal(tokenMatches(token + 'a', token), false);
  assert.equal(tokenMatches('', token), false);
  assert.equal(tokenMatches('b' + token.slice(1), token), false);
});
