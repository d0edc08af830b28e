/**
 * Cross-site WebSocket hijacking, in Chromium: WebSockets are not covered by CORS, and the browser
 * sends the `tidings_token` cookie with the handshake. A page of another origin (`127.0.0.1` on
 * another port, same site, and `localhost`, another site) that opens a graphql-ws socket to
 * Tidings gets no acknowledgement and no event, with `TIDINGS_AUTH=jwt` and the victim's cookie
 * as well as with `TIDINGS_AUTH=none`; a page of Tidings' own origin does get them, so the attack
 * is the only thing that fails.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hs256, JWT_CONFIG } from '../auth/tokens.js';
import { waitFor } from '../transport/helpers.js';
import { tserver, type TServer } from '../tserver.js';
import {
  chromiumAvailable,
  launchBrowser,
  openPage,
  otherOrigin,
  type OtherOrigin,
  type TPage,
} from './tbrowser.js';

/** What a page's socket got: whether it opened, the types of its messages, its close code. */
interface SocketLoot {
  opened: boolean;
  types: string[];
  code: number;
}

/**
 * Opens a graphql-ws socket from `page` to `target` (ws://…/graphql), sends `connection_init`
 * then, once acknowledged, a subscription, and resolves what it got once it closed or received
 * an event (or after 8 s).
 */
function openSocket(page: Page, target: string): Promise<SocketLoot> {
  return page.evaluate(
    (url) =>
      new Promise<SocketLoot>((resolve) => {
        const ws = new WebSocket(url, 'graphql-transport-ws');
        const types: string[] = [];
        let opened = false;
        const timer = setTimeout(() => ws.close(), 8_000);
        ws.onopen = () => {
          opened = true;
          ws.send(JSON.stringify({ type: 'connection_init' }));
        };
        ws.onmessage = (e) => {
          const message = JSON.parse(String(e.data)) as { type: string };
          types.push(message.type);
          if (message.type === 'next') ws.close();
          if (message.type !== 'connection_ack') return;
          ws.send(
            JSON.stringify({
              id: '1',
              type: 'subscribe',
              payload: { query: 'subscription { eventStream(inboxes: ["x"]) { message } }' },
            }),
          );
        };
        ws.onclose = (e) => {
          clearTimeout(timer);
          resolve({ opened, types, code: e.code });
        };
      }),
    target,
  );
}

describe.skipIf(!chromiumAvailable())('a page of another origin opening a WebSocket', () => {
  let browser: Browser;
  let attacker: OtherOrigin | undefined;
  let attackerPort: number;
  let opened: TPage | null = null;
  let s: TServer | null = null;

  beforeAll(async () => {
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
  });

  /** Opens `url` in a fresh context, with the victim's cookie for Tidings when given. */
  async function visit(url: string, server: TServer, cookie?: string): Promise<Page> {
    opened = await openPage(browser, new URL(url).origin);
    if (cookie) {
      await opened.context.addCookies([
        { name: 'tidings_token', value: cookie, url: server.url, sameSite: 'Lax' },
      ]);
    }
    await opened.page.goto(url);
    return opened.page;
  }

  /** The page's socket, while the server publishes an event as soon as a stream is open. */
  async function socketWhilePublishing(page: Page, server: TServer): Promise<SocketLoot> {
    const loot = openSocket(page, `${server.url.replace(/^http/, 'ws')}/graphql`);
    let done = false;
    void loot.finally(() => (done = true));
    // The console page opens a stream of its own: only a WebSocket's counts.
    const websocket = () => server.app.streams.list().some((info) => info.mode === 'websocket');
    await waitFor(() => websocket() || done, 'a stream, or the socket to end', 10_000);
    if (!done) await server.app.publish([{ type: 'secret', inbox: 'x', message: 'secret' }]);
    return loot;
  }

  const PAGES = [
    ['127.0.0.1', 'same site, another port: the browser sends the cookie'],
    ['localhost', 'another site'],
  ];

  it.each(PAGES)(
    'should give a page at %s (%s) neither an acknowledgement nor an event with TIDINGS_AUTH=jwt and the victim’s cookie',
    async (host) => {
      s = await tserver(JWT_CONFIG);
      const admin = await hs256({ sub: 'victim', scope: 'events:admin' });
      const page = await visit(`http://${host}:${attackerPort}/`, s, admin);
      const loot = await socketWhilePublishing(page, s);
      expect(loot.types).toEqual([]);
      // Refused at the handshake (the cookie came along), or at connection_init (it did not).
      expect([1006, 4403]).toContain(loot.code);
      expect(s.app.streams.list()).toEqual([]);
    },
  );

  it.each(PAGES)(
    'should refuse the handshake of a page at %s (%s) with TIDINGS_AUTH=none',
    async (host) => {
      s = await tserver();
      const page = await visit(`http://${host}:${attackerPort}/`, s);
      expect(await socketWhilePublishing(page, s)).toEqual({
        opened: false,
        types: [],
        code: 1006,
      });
      expect(s.app.streams.list()).toEqual([]);
    },
  );

  it('should let a page of Tidings’ own origin, with the cookie, subscribe and get the event', async () => {
    s = await tserver(JWT_CONFIG);
    const admin = await hs256({ sub: 'owner', scope: 'events:admin' });
    const page = await visit(`${s.url}/console`, s, admin);
    expect(await socketWhilePublishing(page, s)).toEqual({
      opened: true,
      types: ['connection_ack', 'next'],
      code: 1005,
    });
  });
});
