/**
 * The live console (`/console`) in a real browser: events listed as they arrive, coloured by
 * severity; a plain EventSource that resumes with Last-Event-ID across a server restart, with no
 * gap and no duplicate; filters that rebuild the subscription; and the protocol's error frames.
 */
import type { Browser, Page, Response, Route } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  cleanupProcesses,
  gqlPost,
  startTidings,
  tempStore,
  type TidingsProcess,
} from '../process/tprocess.js';
import { requireCapability } from '../../src/store/index.js';
import { hs256, JWT_CONFIG } from '../auth/tokens.js';
import { tserver, type TServer } from '../tserver.js';
import { chromiumAvailable, launchBrowser, openPage, screenshot, type TPage } from './tbrowser.js';

const PUBLISH = 'mutation($e: PublishEventInput!) { publishEvent(input: $e) { id cursor } }';

/** The `--sev` colour of each severity in the page's stylesheet. */
const COLOURS: Record<string, string> = {
  ERROR: 'rgb(207, 34, 46)',
  WARNING: 'rgb(212, 167, 44)',
  SUCCESS: 'rgb(26, 127, 55)',
};

interface Published {
  id: string;
  cursor: string;
}

/** Publishes one event to `url` and returns its id and cursor. */
async function publish(url: string, event: Record<string, unknown>): Promise<Published> {
  const answer = await gqlPost<{ publishEvent: Published }>(url, PUBLISH, { e: event });
  const published = answer.body?.data?.publishEvent;
  if (!published) throw new Error(`publish failed: ${JSON.stringify(answer)}`);
  return published;
}

/** A stream request of the page that reached the server. */
interface StreamRequest {
  method: string;
  after: unknown;
  lastEventId: string | null;
  status: number;
}

/** What the request answered by `response` asked the server for. */
async function streamRequest(response: Response): Promise<StreamRequest> {
  const request = response.request();
  const url = new URL(request.url());
  const variables = JSON.parse(url.searchParams.get('variables') ?? '{}') as { after?: unknown };
  return {
    method: request.method(),
    after: variables.after ?? null,
    lastEventId: await request.headerValue('last-event-id'),
    status: response.status(),
  };
}

/** The ids of the listed events, newest first. */
const listed = (page: Page) =>
  page.locator('#events > li').evaluateAll((items) => items.map((li) => li.dataset.id));

/** The state the page shows: connecting, live, reconnecting or stopped. */
const stateOf = (page: Page) => page.locator('#state').getAttribute('data-state');

/** Calls `handle` for every stream request of the page (not for anything else). */
async function onStream(page: Page, handle: (route: Route) => Promise<void>): Promise<void> {
  await page.route((url) => url.pathname === '/graphql/stream', handle);
}

describe.skipIf(!chromiumAvailable())('console in Chromium', () => {
  let browser: Browser;
  let opened: TPage | null = null;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterEach(async () => {
    await opened?.context.close();
    opened = null;
    await cleanupProcesses();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('should list events coloured by severity, and resume with Last-Event-ID across a server restart with no duplicate', async () => {
    const { file } = tempStore();
    // A retry hint longer than a restart: the browser reconnects once the new process has stored
    // an event the page has not seen, which only a resume can deliver.
    let server: TidingsProcess = await startTidings({ file, env: { TIDINGS_RETRY_MS: '3000' } });
    opened = await openPage(browser, server.url);
    const { page, errors, external } = opened;
    // Every stream request the page made, as the server received it. A request that never reached
    // a server (the browser's reconnection while the port was closed) has no response, and
    // Chromium reports none of its headers but the provisional ones, without Last-Event-ID.
    const streams: StreamRequest[] = [];
    page.on('response', (response) => {
      if (new URL(response.url()).pathname !== '/graphql/stream') return;
      void streamRequest(response).then((seen) => streams.push(seen));
    });

    await page.goto(`${server.url}/console`);
    await expect.poll(() => stateOf(page), { timeout: 10_000 }).toBe('live');
    const first = await publish(server.url, {
      type: 'disk.full',
      inbox: 'ops',
      severity: 'ERROR',
      message: 'db-1: /var is full',
      body: { host: 'db-1', used: '100%' },
    });
    const firstItem = page.locator(`#events > li[data-id="${first.id}"]`);
    await firstItem.waitFor({ timeout: 10_000 });
    expect(await firstItem.locator('.type').textContent()).toBe('disk.full');
    expect(await firstItem.locator('.message').textContent()).toBe('db-1: /var is full');
    expect(await firstItem.getAttribute('data-cursor')).toBe(first.cursor);
    const badge = firstItem.locator('.severity');
    expect(await badge.textContent()).toBe('ERROR');
    expect(await badge.evaluate((e) => getComputedStyle(e).backgroundColor)).toBe(COLOURS.ERROR);
    expect(await firstItem.evaluate((e) => getComputedStyle(e).borderLeftColor)).toBe(
      COLOURS.ERROR,
    );

    // Restart on the same port and file.
    expect(await server.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    await page.locator('#notices li', { hasText: 'SHUTTING_DOWN' }).waitFor({ timeout: 10_000 });
    await expect.poll(() => stateOf(page)).toBe('reconnecting');
    server = await startTidings({ file, port: server.port });
    const second = await publish(server.url, {
      type: 'disk.cleaned',
      inbox: 'ops',
      severity: 'SUCCESS',
      message: 'db-1: /var is back to 40%',
    });
    await page.locator(`#events > li[data-id="${second.id}"]`).waitFor({ timeout: 10_000 });
    await expect.poll(() => stateOf(page)).toBe('live');
    // Each event is listed once, whatever the reconnections were.
    expect(await listed(page)).toEqual([second.id, first.id]);
    // The first stream asked for live events only. Every later request that carried no cursor
    // was a probe that opens no stream (HEAD, no body); every later stream resumed after the
    // first event, with Last-Event-ID (the browser's reconnection) or `after` (the console's).
    await expect.poll(() => streams.length).toBeGreaterThan(1);
    expect(streams[0]).toMatchObject({ method: 'GET', after: null, lastEventId: null });
    const later = streams.slice(1);
    expect(later.filter((s) => s.method === 'GET').length).toBeGreaterThan(0);
    for (const stream of later) {
      if (stream.method === 'HEAD') continue;
      expect(stream.method).toBe('GET');
      expect([stream.after, stream.lastEventId]).toContain(first.cursor);
    }
    const secondBadge = page.locator(`#events > li[data-id="${second.id}"] .severity`);
    expect(await secondBadge.evaluate((e) => getComputedStyle(e).backgroundColor)).toBe(
      COLOURS.SUCCESS,
    );
    await screenshot(page, 'console');
    expect(external).toEqual([]);
    // The browser logs the reconnections that met the closed port or the draining server.
    const restartNoise =
      /^Failed to load resource: (net::ERR_CONNECTION_REFUSED|the server responded with a status of 503)/;
    expect(errors.filter((e) => !restartNoise.test(e))).toEqual([]);
    // Two server starts and a 3 s retry hint: about 10 s here, three times that on a busy machine.
  }, 90_000);

  describe('on an in-process server', () => {
    let server: TServer;
    beforeEach(async () => {
      server = await tserver({ retryMs: 100 });
    });
    afterEach(() => server?.stop());

    it('should rebuild the subscription when the type filter changes and list only matching events', async () => {
      opened = await openPage(browser, server.url);
      const { page, errors } = opened;
      await page.goto(`${server.url}/console`);
      await expect.poll(() => stateOf(page), { timeout: 10_000 }).toBe('live');
      await page.getByLabel('Types').fill('deploy.*');
      await page.getByRole('button', { name: 'Apply' }).click();
      await expect.poll(() => new URL(page.url()).search).toBe('?types=deploy.*');
      await expect.poll(() => stateOf(page)).toBe('live');
      // The unfiltered stream is gone and the filtered one is open.
      await expect.poll(() => server.app.hub.size).toBe(1);

      const hidden = await publish(server.url, { type: 'vm.started', severity: 'INFO' });
      const shown = await publish(server.url, {
        type: 'deploy.failed',
        severity: 'WARNING',
        message: 'api v2.3.1: health check failed',
      });
      const item = page.locator(`#events > li[data-id="${shown.id}"]`);
      await item.waitFor({ timeout: 10_000 });
      // Frames arrive in cursor order: had the first event passed the filter, it would be here.
      expect(await listed(page)).toEqual([shown.id]);
      expect(await listed(page)).not.toContain(hidden.id);
      expect(
        await item.locator('.severity').evaluate((e) => getComputedStyle(e).backgroundColor),
      ).toBe(COLOURS.WARNING);
      await screenshot(page, 'console-filters');

      // The filters live in the address, so a reload keeps them.
      await page.reload();
      expect(await page.getByLabel('Types').inputValue()).toBe('deploy.*');
      expect(errors).toEqual([]);
    });

    it('should show a HISTORY_GAP notice and go on with the retained events', async () => {
      const old = await server.app.publish(
        Array.from({ length: 4 }, (_, i) => ({ type: `old.${i}`, inbox: 'gap' })),
      );
      await expect.poll(() => Date.now()).toBeGreaterThan(old[0]?.receivedAt ?? Infinity);
      await requireCapability(server.app.store, 'retention', 'the test').purge(Date.now(), 2); // removes old.0 and old.1
      opened = await openPage(browser, server.url);
      const { page, errors } = opened;
      // The page resumes (as after a drop) from a cursor retention has passed.
      await onStream(page, (route) =>
        route.continue({
          headers: { ...route.request().headers(), 'last-event-id': old[0]?.cursor as string },
        }),
      );
      await page.goto(`${server.url}/console?inboxes=gap`);
      await page.locator('#notices li', { hasText: 'HISTORY_GAP' }).waitFor({ timeout: 10_000 });
      await expect.poll(() => listed(page)).toEqual([old[3]?.id, old[2]?.id]);
      expect(await stateOf(page)).toBe('live');
      expect(errors).toEqual([]);
    });

    it('should say when the stream needs a token, and stream with the tidings_token cookie', async () => {
      const secured = await tserver(JWT_CONFIG);
      try {
        opened = await openPage(browser, secured.url);
        const { page, context } = opened;
        await page.goto(`${secured.url}/console`);
        await expect.poll(() => stateOf(page), { timeout: 10_000 }).toBe('stopped');
        const refusal = page.locator('#notices li', { hasText: 'HTTP 401' });
        expect(await refusal.textContent()).toMatch(/tidings_token cookie/);

        const token = await hs256({ sub: 'viewer', scope: 'events:read' });
        await context.addCookies([{ name: 'tidings_token', value: token, url: secured.url }]);
        await page.getByRole('button', { name: 'Apply' }).click();
        await expect.poll(() => stateOf(page), { timeout: 10_000 }).toBe('live');
        const [event] = await secured.app.publish([{ type: 'auth.ok', message: 'with a cookie' }]);
        await page.locator(`#events > li[data-id="${event?.id}"]`).waitFor({ timeout: 10_000 });
      } finally {
        await opened?.context.close();
        opened = null;
        await secured.stop();
      }
    });

    it('should close the EventSource on BAD_CURSOR instead of asking again', async () => {
      opened = await openPage(browser, server.url);
      const { page } = opened;
      let requests = 0;
      await onStream(page, (route) => {
        requests++;
        return route.continue({
          headers: { ...route.request().headers(), 'last-event-id': 'not-a-cursor' },
        });
      });
      await page.goto(`${server.url}/console`);
      await page.locator('#notices li', { hasText: 'BAD_CURSOR' }).waitFor({ timeout: 10_000 });
      expect(await stateOf(page)).toBe('stopped');
      // The server's retry hint is 100 ms: a browser that had not closed would be back by now.
      await page.waitForTimeout(1_000);
      expect(requests).toBe(1);
      expect(await stateOf(page)).toBe('stopped');
    });
  });
});
