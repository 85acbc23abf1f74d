// Finds a Chromium to drive headless, in this order: STARLING_CHROMIUM (or CHROME_PATH), the
// browser Playwright installed, Debian's /usr/bin/chromium, then Google Chrome.
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';

const COMMON_FLAGS = [
  '--enable-unsafe-webgpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  // Loopback-only WebRTC: let ICE see 127.0.0.1 instead of an mDNS name.
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];

/**
 * Flags that expose WebGPU in headless Chromium: on SwiftShader (the default, works on any machine)
 * or, with STARLING_GPU=vulkan, on the machine's real GPU through Vulkan.
 */
export function webgpuFlags(): string[] {
  if (process.env.STARLING_GPU === 'vulkan') {
    return [
      ...COMMON_FLAGS,
      '--enable-features=Vulkan',
      '--use-vulkan',
      '--use-angle=vulkan',
      '--ignore-gpu-blocklist',
    ];
  }
  return [...COMMON_FLAGS, '--enable-unsafe-swiftshader', '--use-angle=swiftshader'];
}

export function findBrowser(): string {
  const tried: string[] = [];
  const env = process.env.STARLING_CHROMIUM ?? process.env.CHROME_PATH;
  if (env) {
    if (existsSync(env)) return env;
    throw new Error(`STARLING_CHROMIUM points at ${env}, which does not exist`);
  }
  try {
    const p = chromium.executablePath();
    if (p && existsSync(p)) return p;
    tried.push(p);
  } catch {
    tried.push("Playwright's own chromium (not installed)");
  }
  for (const p of [
    '/usr/bin/chromium',
    '/usr/bin/chromium-browser',
    '/usr/bin/google-chrome',
    '/usr/bin/google-chrome-stable',
  ]) {
    if (existsSync(p)) return p;
    tried.push(p);
  }
  throw new Error(
    `No Chromium found (tried: ${tried.join(', ')}). Install one: on Debian/Ubuntu "sudo apt-get install chromium", ` +
      `or "npx playwright install chromium" where the internet is reachable, or set STARLING_CHROMIUM=/path/to/chrome.`,
  );
}
