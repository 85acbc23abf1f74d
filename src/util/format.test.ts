import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fmtBytes } from './format';

test('fmtBytes: bytes below 1 KiB, KiB with one decimal below 1 MiB, then MiB with two', () => {
  assert.equal(fmtBytes(0), '0 B');
  assert.equal(fmtBytes(1023), '1023 B');
  assert.equal(fmtBytes(1024), '1.0 KiB');
  assert.equal(fmtBytes(1536), '1.5 KiB');
  assert.equal(fmtBytes(1024 * 1024 - 1), '1024.0 KiB');
  assert.equal(fmtBytes(1024 * 1024), '1.00 MiB');
  assert.equal(fmtBytes(3 * 1024 ** 3), '3072.00 MiB');
});
