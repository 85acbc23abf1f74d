import { test, expect } from '@playwright/test';
import { startHarness } from './harness';

test('the console shows the job, its loss curve and its donors', async () => {
  const h = await startHarness({ name: 'e2e-console', train: { rounds: 4, minDonors: 1 } }, 1);
  try {
    // Open the console after the last round: the job is finishing or done, and its donors (from the
    // store once it no longer runs) must still be listed.
    await h.waitForRound((r) => r.round === 3 && r.accepted >= 1, 'the last round');
    const page = await h.fleet.browser.newPage();
    // The coordinator's Content-Security-Policy must not block anything the console does.
    const cspViolations: string[] = [];
    page.on('console', (m) => {
      if (m.text().includes('Content Security Policy')) cspViolations.push(m.text());
    });
    await page.goto(`${h.server.url}/console#token=${h.server.token}`);
    const row = page.locator(`tr[data-job-id="${h.jobId}"]`);
    await expect(row).toContainText('e2e-console');
    await expect(page.locator('#detail-title')).toContainText(h.jobId);
    await expect(page.locator('#chart polyline').first()).toBeVisible();
    await expect(page.locator('#donors tbody tr')).toHaveCount(1);
    await expect(page.locator('#donors tbody')).toContainText('e2e-0');
    await expect(page.locator('#data-warning')).toHaveText(
      'Training text is sent to every donor that joins; do not use private data.',
    );
    // The job form offers the GPT: its fields replace the MLP's, and the API's check names a bad one.
    await expect(page.locator('input[name="embed"]')).toBeVisible();
    await page.selectOption('#model-type', 'gpt');
    await expect(page.locator('input[name="embed"]')).toBeHidden();
    await expect(page.locator('input[name="layers"]')).toBeVisible();
    await page.fill('input[name="width"]', '30');
    await page.fill('input[name="heads"]', '4');
    await page.click('#new-job button[type="submit"]');
    await expect(page.locator('#form-error')).toHaveText('model.width (30) must be divisible by model.heads (4)');
    // A wrong token is refused with the API's message, not a blank page.
    await page.fill('#token', 'wrong-token');
    await page.click('#save-token');
    await expect(page.locator('#auth-state')).not.toHaveText('connected');
    expect(cspViolations).toEqual([]);
    await page.close();
  } finally {
    await h.close();
  }
});
