// Shared plumbing for benchmarks that run in a browser page: build the bench pages with Vite (root
// bench/, output bench/.build/), serve them on 127.0.0.1 (WebGPU needs a secure context, and
// loopback counts as one), and open them in headless Chromium with WebGPU enabled.
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build } from 'vite';
import { findBrowser, webgpuFlags } from '../cli/browser';

export const benchDir = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(benchDir, '..');
export const buildDir = resolve(benchDir, '.build');

/** Builds bench/<page>.html for each page into bench/.build/ (emptied first). */
export async function buildPages(pages: readonly string[]): Promise<string> {
  const input: Record<string, string> = {};
  for (const p of pages) {
    const html = resolve(benchDir, `${p}.html`);
    if (!existsSync(html)) throw new Error(`bench page ${html} does not exist`);
    input[p] = html;
  }
  await viteBuild(buildDir, input);
  return buildDir;
}

/**
 * Builds bench/<page>.html into its own folder, bench/.build/<page>/, so that it neither empties nor
 * is emptied by another benchmark's build running at the same time (buildPages empties bench/.build/).
 */
export async function buildPage(page: string): Promise<string> {
  const outDir = resolve(buildDir, page);
  await viteBuild(outDir, { [page]: resolve(benchDir, `${page}.html`) });
  return outDir;
}

async function viteBuild(outDir: string, input: Record<string, string>): Promise<void> {
  await build({
    configFile: false,
    root: benchDir,
    base: './',
    publicDir: false,
    logLevel: 'warn',
    build: {
      outDir,
      emptyOutDir: true,
      target: 'es2022',
      reportCompressedSize: false,
      // TF.js is one big chunk; that is expected here.
      chunkSizeWarningLimit: 8000,
      rolldownOptions: { input },
    },
  });
}

export interface StaticServer {
  origin: string;
  close(): Promise<void>;
}

/** Serves `dir` on 127.0.0.1 on a free port. */
export async function serveStatic(dir: string): Promise<StaticServer> {
  const app = express();
  app.use(express.static(dir, { etag: false, maxAge: 0 }));
  const server: Server = await new Promise((ok, fail) => {
    const s = app.listen(0, '127.0.0.1', () => ok(s));
    s.once('error', fail);
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections?.();
        server.close(() => ok());
      }),
  };
}

/** Headless Chromium with the project's WebGPU flags (SwiftShader, or the real GPU with STARLING_GPU=vulkan). */
export async function launchBrowser(): Promise<{ browser: Browser; executablePath: string }> {
  const executablePath = findBrowser();
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: [...webgpuFlags(), ...(process.getuid?.() === 0 ? ['--no-sandbox'] : [])],
  });
  return { browser, executablePath };
}

/**
 * Opens `url` in a fresh page, forwarding the page's errors (and, with `verbose`, its console) to
 * `log`, and waits until `readyGlobal` is set on window by the page's script.
 */
export async function openBenchPage(
  browser: Browser,
  url: string,
  readyGlobal: string,
  log: (line: string) => void,
  verbose = false,
): Promise<Page> {
  const page = await browser.newPage();
  page.setDefaultTimeout(0); // a SwiftShader 1024³ batch can take many seconds; each bench sets its own limits
  page.on('console', (m) => {
    if (verbose || m.type() === 'error' || m.type() === 'warning') log(`[page ${m.type()}] ${m.text()}`);
  });
  page.on('pageerror', (e) => log(`[page error] ${e.message}`));
  page.on('crash', () => log('[page crashed]'));
  await page.goto(url);
  await page.waitForFunction((g) => (globalThis as Record<string, unknown>)[g] !== undefined, readyGlobal, {
    timeout: 60_000,
  });
  return page;
}
