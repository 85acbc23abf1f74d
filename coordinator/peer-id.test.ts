import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreatePeerId, PEER_ID_FILE } from './peer-id';

test('the peer id is created once per data directory and reused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'starling-peer-id-'));
  try {
    const first = loadOrCreatePeerId(join(dir, 'data'));
    assert.equal(first.created, true);
    assert.match(first.peerId, /^starling-coordinator-[0-9a-f]{12}$/);
    assert.equal(readFileSync(join(dir, 'data', PEER_ID_FILE), 'utf8').trim(), first.peerId);
    const again = loadOrCreatePeerId(join(dir, 'data'));
    assert.deepEqual(again, { peerId: first.peerId, created: false });
    // Another data directory, another id.
    assert.notEqual(loadOrCreatePeerId(join(dir, 'other')).peerId, first.peerId);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a damaged peer id file is an error naming the file, not a silent new id', () => {
  const dir = mkdtempSync(join(tmpdir(), 'starling-peer-id-'));
  try {
    writeFileSync(join(dir, PEER_ID_FILE), 'not an id\n');
    assert.throws(() => loadOrCreatePeerId(dir), /peer-id holds "not an id".*delete it/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
