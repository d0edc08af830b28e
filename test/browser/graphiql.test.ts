/**
 * GraphiQL in a real browser with no internet: it opens with a Live subscription tab and a
 * Publish mutation tab, the subscription streams events over SSE into the result pane, and the
 * mutation tab publishes.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tserver, type TServer } from '../tserver.js';
import { chromiumAvailable, launchBrowser, openPage, screenshot } from './tbrowser.js';

const PUBLISH = 'mutation($e: PublishEventInput!) { publishEvent(input: $e) { id cursor } }';

describe.skipIf(!chromiumAvailable())('GraphiQL in Chromium', () => {
  let server: TServer;
  let browser: Browser;
  beforeAll(async () => {
    [server, browser] = await Promise.all([tserver(), launchBrowser()]);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('should serve a page that names no other host in its markup or styles', async () => {
    const res = await fetch(`${server.url}/graphql`, { headers: { accept: 'text/html' } });
    const html = await res.text();
    expect(html).not.toMatch(/<(script|img|iframe)\b[^>]*\bsrc=["']?(https?:)?\/\//i);
    expect(html).not.toMatch(/<link\b[^>]*\bhref=["']?(https?:)?\/\//i);
    expect(html).not.toMatch(/url\(\s*["']?(https?:)?\/\//i);
    expect(html).not.toMatch(/@import/);
  });

  it('should open with Live and Publish tabs, stream a published event into the Live result, and publish from the Publish tab', async () => {
    const { page, errors, external } = await openPage(browser, server.url);
    await page.goto(`${server.url}/graphql`);
    const run = page.getByRole('button', { name: 'Execute query (Ctrl-Enter)' });
    await run.waitFor({ timeout: 20_000 });
    const tabs = page.locator('[role=tab] .graphiql-tab-button');
    await expect.poll(() => tabs.allTextContents()).toEqual(['Live', 'Publish']);
    await expect.poll(() => page.locator('.graphiql-tab-active').textContent()).toMatch(/^Live/);

    // Run the Live subscription; it is open once the server holds its stream.
    await expect
      .poll(() => page.locator('.graphiql-query-editor').textContent())
      .toMatch(/subscription\s*Live/);
    await run.click();
    await expect.poll(() => server.app.hub.size, { timeout: 10_000 }).toBe(1);

    const published = await server.gql<{ publishEvent: { id: string; cursor: string } }>(PUBLISH, {
      e: { type: 'browser.test', message: 'seen-in-graphiql', severity: 'WARNING' },
    });
    expect(published.errors).toBeUndefined();
    const response = page.locator('.graphiql-response');
    await response.filter({ hasText: 'seen-in-graphiql' }).waitFor({ timeout: 15_000 });
    expect(await response.textContent()).toContain(published.data?.publishEvent.cursor);
    await screenshot(page, 'graphiql');

    // The Publish tab publishes its example event. GraphiQL updates the operation name of a
    // tab it switched to a moment after showing it; a run before that fails in the page with
    // "Cannot infer operation" and sends nothing, so run again until the mutation answers.
    await page.getByRole('button', { name: 'Publish', exact: true }).click();
    await expect
      .poll(() => page.locator('.graphiql-query-editor').textContent())
      .toMatch(/mutation\s*Publish/);
    await expect
      .poll(() => new URL(page.url()).searchParams.get('query'))
      .toMatch(/mutation\s*Publish/);
    await run.click();
    await response.filter({ hasText: '"publishEvent"' }).waitFor({ timeout: 15_000 });
    const stored = await server.gql<{ events: { edges: { node: { message: string } }[] } }>(
      '{ events(filter: { types: ["demo.hello"] }) { edges { node { message } } } }',
    );
    expect(stored.data?.events.edges.map((e) => e.node.message)).toEqual(['Hello from GraphiQL']);

    expect(external).toEqual([]);
    expect(errors).toEqual([]);
  });
});
