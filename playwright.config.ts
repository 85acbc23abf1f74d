import { defineConfig } from '@playwright/test';

// The e2e tests start their own coordinator and drive headless Chromium donors through
// cli/fleet.ts (the same code the CLI uses), so no Playwright-managed browser is needed.
export default defineConfig({
  testDir: 'e2e',
  testMatch: '*.spec.ts',
  timeout: 240_000,
  workers: 1,
  retries: 0,
  reporter: [['list']],
});
