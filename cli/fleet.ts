// A headless fleet of donors: N Chromium pages (each in its own browser context, so each has its
// own IndexedDB and donor id) open the donor URL with WebGPU enabled. A page that crashes or
// closes on its own is reopened, so a long-running fleet keeps its size.
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { EventEmitter } from 'node:events';
import { findBrowser, webgpuFlags } from './browser';
import type { HeartbeatSettings } from '../src/protocol/heartbeat';

export interface FleetOptions {
  url: string;
  donors: number;
  /** Prefix of the donors' ids; donor i is `${prefix}-${i}`. */
  prefix?: string;
  executablePath?: string;
  log?: (line: string) => void;
  /** Forward the pages' console output to the log. */
  verbose?: boolean;
  /** Where the donors encode updates ('auto': the GPU unless the adapter is a software one). */
  encode?: 'auto' | 'gpu' | 'cpu';
  /** The pages' heartbeat (?hb=, ?hbTimeout=); default the page's own (2 s, 8 s). */
  heartbeat?: Partial<HeartbeatSettings>;
}

export interface FleetDonor {
  index: number;
  id: string;
  page: Page;
  context: BrowserContext;
  restarts: number;
}

export class Fleet {
  readonly donors: FleetDonor[] = [];
  private closing = false;
  private readonly replaced = new WeakSet<Page>();
  private readonly emitter = new EventEmitter();

  private constructor(
    readonly browser: Browser,
    private readonly opts: Required<Pick<FleetOptions, 'url' | 'prefix' | 'verbose'>> &
      Pick<FleetOptions, 'encode' | 'heartbeat'> & { log: (l: string) => void },
  ) {}

  static async launch(opts: FleetOptions): Promise<Fleet> {
    if (!Number.isInteger(opts.donors) || opts.donors < 0 || opts.donors > 64) {
      throw new RangeError(`donors must be an integer in [0, 64], got ${opts.donors}`);
    }
    const executablePath = opts.executablePath ?? findBrowser();
    const browser = await chromium.launch({
      executablePath,
      headless: true,
      args: [...webgpuFlags(), ...(process.getuid?.() === 0 ? ['--no-sandbox'] : [])],
    });
    const fleet = new Fleet(browser, {
      url: opts.url,
      prefix: opts.prefix ?? `fleet-${process.pid}`,
      verbose: opts.verbose ?? false,
      encode: opts.encode,
      heartbeat: opts.heartbeat,
      log: opts.log ?? ((l) => console.log(`[fleet] ${l}`)),
    });
    for (let i = 0; i < opts.donors; i++) await fleet.add();
    return fleet;
  }

  /** Opens one more donor page. */
  async add(): Promise<FleetDonor> {
    const index = this.donors.length;
    const id = `${this.opts.prefix}-${index}`;
    const context = await this.browser.newContext();
    const page = await context.newPage();
    const donor: FleetDonor = { index, id, page, context, restarts: 0 };
    this.donors.push(donor);
    await this.open(donor);
    return donor;
  }

  private async open(d: FleetDonor): Promise<void> {
    const { page } = d;
    page.on('console', (m) => {
      if (this.opts.verbose || m.type() === 'error') this.opts.log(`${d.id}: ${m.text()}`);
    });
    page.on('pageerror', (e) => this.opts.log(`${d.id} page error: ${e.message}`));
    page.on('crash', () => {
      this.opts.log(`${d.id} crashed; reopening`);
      void this.restart(d, page);
    });
    page.on('close', () => {
      if (!this.closing && d.page === page) {
        this.opts.log(`${d.id} closed; reopening`);
        void this.restart(d, page);
      }
    });
    const url = new URL(this.opts.url);
    url.searchParams.set('autostart', '1');
    url.searchParams.set('donor', d.id);
    if (this.opts.encode) url.searchParams.set('encode', this.opts.encode);
    const hb = this.opts.heartbeat;
    if (hb?.intervalMs !== undefined) url.searchParams.set('hb', String(hb.intervalMs));
    if (hb?.timeoutMs !== undefined) url.searchParams.set('hbTimeout', String(hb.timeoutMs));
    await page.goto(url.toString());
  }

  /**
   * Replaces `old` (crashed or closed) with a fresh page; each dead page is replaced once. When its
   * context cannot open a page any more (seen once in CI after a crash: "Failed to open a new tab"),
   * the donor gets a fresh context (same id, empty IndexedDB); if that fails too the error is logged,
   * never left as an unhandled rejection that would take the whole process down.
   */
  private async restart(d: FleetDonor, old: Page): Promise<void> {
    if (this.closing || this.replaced.has(old)) return;
    this.replaced.add(old);
    d.restarts++;
    try {
      try {
        d.page = await d.context.newPage();
      } catch (e) {
        this.opts.log(`${d.id}: no new page in its context (${(e as Error).message}); trying a fresh context`);
        await d.context.close().catch(() => {});
        d.context = await this.browser.newContext();
        d.page = await d.context.newPage();
      }
      await old.close().catch(() => {});
      await this.open(d);
      this.emitter.emit('restart', d);
    } catch (e) {
      this.opts.log(`${d.id}: could not be reopened: ${(e as Error).message}`);
    }
  }

  /** Resolves when donor `index` has been restarted `count` times in all. */
  waitForRestarts(index: number, count: number): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if ((this.donors[index]?.restarts ?? 0) >= count) {
          this.emitter.off('restart', check);
          resolve();
        }
      };
      this.emitter.on('restart', check);
      check();
    });
  }

  /** Closes one donor's page for good (used to test vanishing donors). */
  async remove(index: number): Promise<void> {
    const d = this.donors[index];
    if (!d) throw new RangeError(`no donor ${index}; the fleet has ${this.donors.length}`);
    const page = d.page;
    this.replaced.add(page); // closed on purpose: not reopened
    await page.close();
    await d.context.close();
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.browser.close();
  }
}
