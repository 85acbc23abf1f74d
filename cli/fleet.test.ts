// The fleet's page replacement, on a page that needs no server (a data: URL stands in for the donor page).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Fleet } from './fleet';

test(
  'a donor page whose context can no longer open pages is reopened in a fresh context, under the same id',
  { timeout: 60_000 },
  async () => {
    const logs: string[] = [];
    const fleet = await Fleet.launch({
      url: 'data:text/html,<p>donor page</p>',
      donors: 1,
      prefix: 'ft',
      log: (l) => logs.push(l),
    });
    try {
      const d = fleet.donors[0];
      const oldContext = d.context;
      // What CI once saw after a crash: the context refuses new tabs.
      oldContext.newPage = async () => {
        throw new Error('Protocol error (Target.createTarget): Failed to open a new tab');
      };
      const restarted = fleet.waitForRestarts(0, 1);
      await d.page.close();
      await restarted;
      assert.notEqual(d.context, oldContext);
      assert.equal(d.id, 'ft-0');
      assert.match(await d.page.content(), /donor page/);
      assert.ok(
        logs.some((l) =>
          /^ft-0: no new page in its context \(.*Failed to open a new tab\); trying a fresh context$/.test(l),
        ),
        logs.join('\n'),
      );
    } finally {
      await fleet.close();
    }
  },
);
