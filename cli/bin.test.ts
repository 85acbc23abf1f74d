// package.json's `bin` (what `npx starling` runs) exists and starts the CLI without a build step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(`${root}/package.json`, 'utf8')) as { bin: Record<string, string> };
const starling = (...args: string[]) =>
  spawnSync(process.execPath, [pkg.bin.starling, ...args], { cwd: root, encoding: 'utf8' });

test('the package bin runs the CLI: `starling help` prints the usage and exits 0', () => {
  assert.ok(pkg.bin.starling, 'package.json names a starling bin');
  const r = starling('help');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^usage: starling <command>/);
  for (const c of ['serve', 'fleet', 'demo', 'train', 'sample']) assert.match(r.stdout, new RegExp(`^  ${c} `, 'm'));
});

test('an unknown command exits 2 naming it', () => {
  const r = starling('nonsense');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command "nonsense"/);
});
