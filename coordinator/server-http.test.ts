// The whole coordinator's HTTP side: security headers on pages and API answers, and malformed
// requests caught before any route (a bad escape while matching the path) answered without a stack.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from './server';

test('pages and API answers carry the security headers; bad escapes are 400s with nothing logged', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'starling-http-'));
  const appDir = join(dataDir, 'app');
  mkdirSync(appDir);
  writeFileSync(join(appDir, 'index.html'), '<!doctype html><title>donate</title>');
  writeFileSync(join(appDir, 'console.html'), '<!doctype html><title>console</title>');
  const logged: string[] = [];
  const server = await startServer({ port: 0, dataDir, appDir, log: (l) => logged.push(l) });
  t.after(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const host = new URL(server.url).host;
  for (const path of ['/', '/console', '/api/openapi.json', '/api/jobs', '/api/no-such-route']) {
    const res = await fetch(server.url + path);
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /(^|;)default-src 'self'(;|$)/, `${path}: ${csp}`);
    assert.match(csp, /(^|;)script-src 'self'(;|$)/, path);
    assert.match(csp, /(^|;)worker-src 'self'(;|$)/, path);
    assert.ok(csp.includes(`connect-src 'self' ws://${host} wss://${host}`), `${path}: ${csp}`);
    assert.match(csp, /(^|;)frame-ancestors 'none'(;|$)/, path);
    assert.equal(res.headers.get('x-frame-options'), 'DENY', path);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer', path);
    assert.equal(res.headers.get('x-powered-by'), null, path);
    await res.arrayBuffer();
  }
  // The shard counter in server.ts matches this path before the API router does.
  for (const path of ['/api/donor/jobs/%c0/shards/0', '/api/jobs/%ff/rounds']) {
    const res = await fetch(server.url + path);
    assert.equal(res.status, 400, path);
    assert.match(((await res.json()) as { error: string }).error, /^malformed URL escape in path /);
  }
  assert.deepEqual(
    logged.filter((l) => /failed|Error|\n\s+at /.test(l)),
    [],
    'no stack trace or failure logged',
  );
});
