/**
 * A page of another origin in Chromium, against Tidings at `http://127.0.0.1:<port>`: its
 * credentialed `fetch`, its form posts (urlencoded and multipart), its credentialed `EventSource`
 * and its `no-cors` fetch of a stream (which sends no `Origin`) get nothing, and nothing is
 * stored, both with `TIDINGS_AUTH=jwt` (the victim's `tidings_token` cookie set for Tidings) and
 * with `TIDINGS_AUTH=none`. The page is served from `127.0.0.1` on another port (same site, so the
 * browser sends the cookie: only Tidings can refuse it) and from `localhost` on that port (another
 * site).
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hs256, JWT_CONFIG } from '../auth/tokens.js';
import { STREAM_QUERY } from '../transport/helpers.js';
import { tserver, type TServer } from '../tserver.js';
import {
  chromiumAvailable,
  launchBrowser,
  openPage,
  otherOrigin,
  type OtherOrigin,
  type TPage,
} from './tbrowser.js';

const PUBLISH = 'mutation { publishEvent(input: { type: "cross.site", inbox: "x" }) { id } }';
const QUERY = '{ events(first: 5) { edges { node { id message } } } }';

/** What the page managed to do; every field must stay empty. */
interface Loot {
  /** Bodies `fetch` could read. */
  read: string[];
  /** Messages the `EventSource` received. */
  streamed: string[];
}

/** Runs the attacks of a page at another origin against `target`; resolves what they got. */
async function attack(page: Page, target: string): Promise<Loot> {
  return page.evaluate(
    async ({ target, PUBLISH, QUERY, STREAM_QUERY }) => {
      const read: string[] = [];
      const streamed: string[] = [];
      const attempts: Promise<unknown>[] = [
        fetch(`${target}/graphql?query=${encodeURIComponent(QUERY)}`, { credentials: 'include' }),
        fetch(`${target}/graphql`, {
          method: 'POST',
          credentials: 'include',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query: PUBLISH }),
        }),
        fetch(`${target}/graphql/stream`, {
          method: 'POST',
          credentials: 'include',
          headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
          body: JSON.stringify({ query: STREAM_QUERY }),
        }),
        fetch(`${target}/metrics`, { credentials: 'include' }),
        fetch(`${target}/console`, { credentials: 'include' }),
      ];
      for (const attempt of attempts) {
        try {
          const res = (await attempt) as Response;
          read.push(`${res.status} ${await res.text()}`);
        } catch {
          // refused by CORS: nothing to read
        }
      }
      const source = new EventSource(
        `${target}/graphql/stream?query=${encodeURIComponent(STREAM_QUERY)}`,
        { withCredentials: true },
      );
      source.onmessage = (e) => streamed.push(String(e.data));
      source.addEventListener('next', (e) => streamed.push(String((e as MessageEvent).data)));
      await new Promise<void>((resolve) => {
        source.onerror = () => resolve();
        source.onopen = () => streamed.push('open');
      });
      source.close();
      return { read, streamed };
    },
    { target, PUBLISH, QUERY, STREAM_QUERY },
  );
}

/**
 * Opens a stream with a `no-cors` fetch, a GET that carries the cookie but no `Origin`, and keeps
 * its response; resolves the status Tidings answered (the page itself only sees an opaque one).
 */
async function noCorsStream(page: Page, target: string): Promise<number> {
  const url = `${target}/graphql/stream?query=${encodeURIComponent(STREAM_QUERY)}`;
  const answered = page.waitForResponse((r) => r.url() === url, { timeout: 20_000 });
  await page.evaluate(async (url) => {
    const res = await fetch(url, {
      mode: 'no-cors',
      credentials: 'include',
      headers: { accept: 'text/event-stream' },
    });
    // Kept, so that a stream the server opened stays open until the test looks.
    Object.assign(window, { kept: res });
  }, url);
  return (await answered).status();
}

/** The forms a page can post without a preflight: path, encoding, fields. */
const FORMS: [string, string, Record<string, string>][] = [
  ['/graphql', 'application/x-www-form-urlencoded', { query: PUBLISH }],
  [
    '/graphql',
    'multipart/form-data',
    { operations: JSON.stringify({ query: PUBLISH }), map: '{}' },
  ],
  // A text/plain form can send a body that looks like JSON.
  ['/graphql', 'text/plain', { '{"query":"mutation { setLogLevel(level: DEBUG) }","x":"': '"}' }],
  ['/debug/heap-snapshot', 'application/x-www-form-urlencoded', {}],
];

/**
 * Posts each of {@link FORMS} from the page into a frame of its own (so the page stays) and
 * resolves the statuses Tidings answered them with.
 */
async function postForms(page: Page, target: string): Promise<number[]> {
  const statuses: number[] = [];
  for (const [i, [path, enctype, fields]] of FORMS.entries()) {
    const action = `${target}${path}`;
    const answered = page.waitForResponse(
      (r) => r.url() === action && r.request().method() === 'POST',
      { timeout: 20_000 },
    );
    await page.evaluate(
      ({ action, enctype, fields, name }) => {
        const frame = document.createElement('iframe');
        frame.name = name;
        document.body.append(frame);
        const form = document.createElement('form');
        Object.assign(form, { method: 'POST', action, enctype, target: name });
        for (const [field, value] of Object.entries(fields)) {
          const input = document.createElement('input');
          Object.assign(input, { type: 'hidden', name: field, value });
          form.append(input);
        }
        document.body.append(form);
        form.submit();
      },
      { action, enctype, fields, name: `sink${i}` },
    );
    statuses.push((await answered).status());
  }
  return statuses;
}

describe.skipIf(!chromiumAvailable())('a page of another origin in Chromium', () => {
  let browser: Browser;
  let attacker: OtherOrigin | undefined;
  let attackerPort: number;
  let opened: TPage | null = null;
  let s: TServer | null = null;

  let heapDir: string;
  const previousHeapDir = process.env.TIDINGS_HEAP_DIR;

  beforeAll(async () => {
    heapDir = mkdtempSync(join(tmpdir(), 'tidings-cross-site-'));
    process.env.TIDINGS_HEAP_DIR = heapDir;
    browser = await launchBrowser();
    attacker = await otherOrigin();
    attackerPort = attacker.port;
  });
  afterEach(async () => {
    await opened?.context.close();
    opened = null;
    await s?.stop();
    s = null;
  });
  afterAll(async () => {
    await browser?.close();
    await attacker?.close();
    if (previousHeapDir === undefined) delete process.env.TIDINGS_HEAP_DIR;
    else process.env.TIDINGS_HEAP_DIR = previousHeapDir;
    rmSync(heapDir, { recursive: true, force: true });
  });

  /** Opens the attacker's page at `origin`, with the victim's cookie for Tidings when given. */
  async function visit(origin: string, server: TServer, cookie?: string): Promise<Page> {
    opened = await openPage(browser, origin);
    if (cookie) {
      await opened.context.addCookies([
        { name: 'tidings_token', value: cookie, url: server.url, sameSite: 'Lax' },
      ]);
    }
    await opened.page.goto(`${origin}/`);
    return opened.page;
  }

  /**
   * Lets the page at `origin` attack `server`, then checks it read and streamed nothing, that
   * every form was refused, and that nothing was stored, changed, opened or written.
   */
  async function expectNothing(page: Page, server: TServer): Promise<void> {
    const before = await server.app.store.lastSeq();
    // Refused (403), or unauthenticated when the browser sends no cookie to another site (401).
    expect([401, 403]).toContain(await noCorsStream(page, server.url));
    expect(server.app.hub.size).toBe(0);
    expect(await attack(page, server.url)).toEqual({ read: [], streamed: [] });
    // Refused (403, 415), or unauthenticated when another site's form carries no cookie (401).
    for (const status of await postForms(page, server.url))
      expect([401, 403, 415]).toContain(status);
    expect(await server.app.store.lastSeq()).toBe(before);
    expect(server.app.hub.size).toBe(0);
    expect(server.app.logger.level).toBe('silent');
    expect(readdirSync(heapDir)).toEqual([]);
  }

  const PAGES = [
    ['127.0.0.1', 'same site, another port: the browser sends the cookie'],
    ['localhost', 'another site'],
  ];

  it.each(PAGES)(
    'should give a page at %s (%s) nothing with TIDINGS_AUTH=jwt and the victim’s cookie',
    async (host) => {
      s = await tserver(JWT_CONFIG);
      await s.app.publish([{ type: 'secret', inbox: 'x', message: 'the victim’s event' }]);
      const admin = await hs256({ sub: 'victim', scope: 'events:admin' });
      await expectNothing(await visit(`http://${host}:${attackerPort}`, s, admin), s);
    },
  );

  it.each(PAGES)('should give a page at %s (%s) nothing with TIDINGS_AUTH=none', async (host) => {
    s = await tserver();
    await s.app.publish([{ type: 'secret', inbox: 'x', message: 'the operator’s event' }]);
    await expectNothing(await visit(`http://${host}:${attackerPort}`, s), s);
  });
});
