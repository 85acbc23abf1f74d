#!/usr/bin/env node
// Runs every `*.test.ts` next to the code (src/, coordinator/, cli/, bench/) with Node's test runner
// through tsx. Node 20 has no glob support in --test, so the files are listed here.
// GPU tests need a Vulkan driver for Node's WebGPU (Dawn); with no GPU we point it at the
// SwiftShader ICD that Debian's chromium ships, unless the caller chose one.
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const filter = process.argv.slice(2);
const files = [];
function walk(dir) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.ts')) files.push(relative(root, p));
  }
}
for (const d of ['src', 'coordinator', 'cli', 'bench', 'scripts']) if (existsSync(join(root, d))) walk(join(root, d));
const chosen = filter.length ? files.filter((f) => filter.some((x) => f.includes(x))) : files;
if (chosen.length === 0) {
  console.error(`no test files matched ${filter.join(' ') || '(all)'}`);
  process.exit(1);
}
const env = { ...process.env };
const swiftshader = '/usr/lib/chromium/vk_swiftshader_icd.json';
if (!env.VK_ICD_FILENAMES && !env.VK_DRIVER_FILES && existsSync(swiftshader)) env.VK_ICD_FILENAMES = swiftshader;
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...chosen], {
  cwd: root,
  env,
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
