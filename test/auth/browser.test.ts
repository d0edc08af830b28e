/**
 * Browser rules over real HTTP, on every route: `Host` must name the server (no DNS rebinding),
 * a foreign `Origin` gets nothing without auth and nothing with the token cookie, `*` lets other
 * origins read answers without credentials only, and `POST /graphql` runs only as JSON.
 */
import { request, type IncomingMessage } from 'node:http';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBrowserRules, type BrowserRulesOptions } from '../../src/auth/browser.js';
import { tserver, type TServer } from '../tserver.js';
import { rawStream, STREAM_QUERY, waitFor } from '../transport/helpers.js';
import { bearer, hs256, JWT_CONFIG } from './tokens.js';

const EVIL = 'https://evil.example';
const APP = 'https://app.example.com';
const PUBLISH = 'mutation { publishEvent(input: { type: "csrf.attempt", inbox: "x" }) { id } }';
const QUERY = '{ events(first: 5) { edges { node { id } } } }';
/** The admin mutations a forged request would use, besides publishing. */
const ADMIN_MUTATIONS = [
  PUBLISH,
  'mutation { revokeToken(subject: "victim") }',
  'mutation { endStreams(subject: "victim") }',
  'mutation { setLogLevel(level: DEBUG) }',
];

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: { errors?: { message: string; extensions?: { code?: string } }[] } | null;
}

/** A request with any headers, `Host` included (fetch replaces it); the body read as JSON. */
function call(
  base: string,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${base}${path}`,
      { method: init.method ?? 'GET', headers: init.headers ?? {} },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
          // A stream that was let through: enough to tell, and it would never end.
          if (res.headers['content-type']?.startsWith('text/event-stream')) req.destroy();
        });
        const done = () => {
          let body: Answer['body'] = null;
          try {
            body = JSON.parse(text) as Answer['body'];
          } catch {
            // not JSON: an event stream or a page
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
        };
        res.on('end', done);
        res.on('close', done);
      },
    );
    req.on('error', reject);
    req.end(init.body);
  });
}

const json = (query: string) => JSON.stringify({ query });
const codeOf = (a: Answer) => a.body?.errors?.[0]?.extensions?.code;

/** One request to each route, with `headers`. */
function everyRoute(headers: Record<string, string>) {
  const post = { 'content-type': 'application/json', accept: 'application/json' };
  const stream = `/graphql/stream?query=${encodeURIComponent(STREAM_QUERY)}`;
  return [
    [
      'fast path POST',
      '/graphql',
      { method: 'POST', headers: { ...post, ...headers }, body: json(PUBLISH) },
    ],
    // An unknown parameter sends the request on to yoga.
    [
      'yoga POST',
      '/graphql',
      {
        method: 'POST',
        headers: { ...post, ...headers },
        body: JSON.stringify({ query: PUBLISH, other: 1 }),
      },
    ],
    [
      'yoga GET',
      `/graphql?query=${encodeURIComponent(QUERY)}`,
      { headers: { accept: 'application/json', ...headers } },
    ],
    [
      'preflight',
      '/graphql',
      { method: 'OPTIONS', headers: { 'access-control-request-method': 'POST', ...headers } },
    ],
    ['stream GET', stream, { headers: { accept: 'text/event-stream', ...headers } }],
    [
      'stream POST',
      '/graphql/stream',
      {
        method: 'POST',
        headers: { ...post, accept: 'text/event-stream', ...headers },
        body: json(STREAM_QUERY),
      },
    ],
    [
      'stream preflight',
      '/graphql/stream',
      { method: 'OPTIONS', headers: { 'access-control-request-method': 'GET', ...headers } },
    ],
    ['metrics', '/metrics', { headers }],
    ['heap snapshot', '/debug/heap-snapshot', { method: 'POST', headers }],
    ['console', '/console', { headers }],
  ] as const;
}

let heapDir: string;
const previousHeapDir = process.env.TIDINGS_HEAP_DIR;
beforeAll(() => {
  heapDir = mkdtempSync(join(tmpdir(), 'tidings-browser-'));
  process.env.TIDINGS_HEAP_DIR = heapDir;
});
afterAll(() => {
  if (previousHeapDir === undefined) delete process.env.TIDINGS_HEAP_DIR;
  else process.env.TIDINGS_HEAP_DIR = previousHeapDir;
  rmSync(heapDir, { recursive: true, force: true });
});

describe('TIDINGS_AUTH=none on loopback', () => {
  let s: TServer;
  beforeAll(async () => {
    s = await tserver();
  });
  afterAll(() => s.stop());

  it('should refuse a foreign Origin on every route, changing nothing', async () => {
    for (const origin of [EVIL, 'null', 'http://localhost:1']) {
      for (const [what, path, init] of everyRoute({ origin })) {
        const answer = await call(s.url, path, init);
        expect({ what, origin, status: answer.status, code: codeOf(answer) }).toEqual({
          what,
          origin,
          status: 403,
          code: 'FORBIDDEN',
        });
        expect(answer.headers['access-control-allow-origin']).toBeUndefined();
        expect(answer.headers['access-control-allow-credentials']).toBeUndefined();
      }
      for (const mutation of ADMIN_MUTATIONS) {
        const answer = await call(s.url, '/graphql', {
          method: 'POST',
          headers: { origin, 'content-type': 'application/json' },
          body: json(mutation),
        });
        expect(answer.status).toBe(403);
      }
    }
    expect(await s.app.store.lastSeq()).toBe(0);
    expect(s.app.logger.level).toBe('silent');
    expect(s.app.hub.size).toBe(0);
    expect(readdirSync(heapDir)).toEqual([]);
  });

  it('should answer pages of the server itself', async () => {
    const published = await call(s.url, '/graphql', {
      method: 'POST',
      headers: { origin: s.url, 'content-type': 'application/json' },
      body: json(PUBLISH),
    });
    expect(published.status).toBe(200);
    expect(published.body).toMatchObject({ data: { publishEvent: { id: expect.any(String) } } });
    const port = new URL(s.url).port;
    const page = await call(s.url, '/console', {
      headers: { origin: `http://localhost:${port}`, host: `localhost:${port}` },
    });
    expect(page.status).toBe(200);
  });

  it('should refuse a Host that does not name this server, on every route (DNS rebinding)', async () => {
    const port = new URL(s.url).port;
    for (const host of [`evil.example:${port}`, 'evil.example', `127.0.0.1.nip.io:${port}`]) {
      for (const [what, path, init] of [
        ...everyRoute({ host, origin: `http://${host}` }),
        ['health', '/healthz', { headers: { host } }] as const,
      ]) {
        const answer = await call(s.url, path, init);
        expect({ what, host, status: answer.status, code: codeOf(answer) }).toEqual({
          what,
          host,
          status: 403,
          code: 'HOST_NOT_ALLOWED',
        });
        expect(answer.body?.errors?.[0]?.message).toContain('TIDINGS_ALLOWED_HOSTS');
      }
    }
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, 'LOCALHOST']) {
      expect((await call(s.url, '/healthz', { headers: { host } })).status).toBe(200);
    }
    expect(await s.app.store.lastSeq()).toBe(1);
  });

  it('should accept the origins listed in TIDINGS_CORS_ORIGINS and the names of TIDINGS_ALLOWED_HOSTS', async () => {
    const listed = await tserver({ corsOrigins: [APP], allowedHosts: ['events.example.com'] });
    try {
      const ok = await call(listed.url, '/graphql', {
        method: 'POST',
        headers: { origin: APP, 'content-type': 'application/json' },
        body: json(QUERY),
      });
      expect(ok.status).toBe(200);
      expect(ok.headers['access-control-allow-origin']).toBe(APP);
      expect(ok.headers['access-control-allow-credentials']).toBe('true');
      const other = await call(listed.url, '/graphql', {
        method: 'POST',
        headers: { origin: EVIL, 'content-type': 'application/json' },
        body: json(QUERY),
      });
      expect(other.status).toBe(403);
      const proxied = await call(listed.url, '/graphql', {
        method: 'POST',
        headers: {
          host: 'events.example.com',
          origin: 'https://events.example.com',
          'content-type': 'application/json',
        },
        body: json(QUERY),
      });
      expect(proxied.status).toBe(200);
    } finally {
      await listed.stop();
    }
  });
});

describe('POST /graphql runs only as JSON', () => {
  let s: TServer;
  beforeAll(async () => {
    s = await tserver({ ...JWT_CONFIG, corsOrigins: [APP] });
  });
  afterAll(() => s.stop());

  it('should refuse forms and multipart with 415, even from a listed origin, running nothing', async () => {
    const admin = await hs256({ sub: 'victim', scope: 'events:admin' });
    const victimStream = await rawStream(
      `${s.url}/graphql/stream?query=${encodeURIComponent(STREAM_QUERY)}`,
      { headers: { accept: 'text/event-stream', ...bearer(admin) } },
    );
    await waitFor(() => s.app.hub.size === 1, 'the victim’s stream');
    for (const mutation of ADMIN_MUTATIONS) {
      const form = new FormData();
      form.set('operations', json(mutation));
      form.set('map', '{}');
      const bodies: [string | undefined, BodyInit][] = [
        ['application/x-www-form-urlencoded', new URLSearchParams({ query: mutation }).toString()],
        [undefined, form],
        ['text/plain', json(mutation)],
      ];
      for (const origin of [APP, EVIL, undefined]) {
        for (const [type, body] of bodies) {
          const res = await fetch(`${s.url}/graphql`, {
            method: 'POST',
            headers: {
              cookie: `tidings_token=${admin}`,
              ...(type ? { 'content-type': type } : {}),
              ...(origin ? { origin } : {}),
            },
            body,
          });
          const answer = (await res.json()) as Answer['body'];
          // From another site the cookie is refused first; otherwise the content type is.
          const expected = origin === EVIL ? [403, 'FORBIDDEN'] : [415, 'BAD_USER_INPUT'];
          expect([res.status, answer?.errors?.[0]?.extensions?.code]).toEqual(expected);
        }
      }
    }
    expect(await s.app.store.lastSeq()).toBe(0);
    expect(s.app.logger.level).toBe('silent');
    expect(s.app.hub.size).toBe(1);
    // Not revoked: the token still works.
    expect((await s.gql(QUERY, {}, bearer(admin))).errors).toBeUndefined();
    victimStream.close();
  });
});

describe('TIDINGS_AUTH=jwt with TIDINGS_CORS_ORIGINS=*', () => {
  let s: TServer;
  beforeAll(async () => {
    s = await tserver(JWT_CONFIG);
  });
  afterAll(() => s.stop());

  it('should let any origin read answers, never with credentials', async () => {
    const token = await hs256({ sub: 'app', scope: 'events:read' });
    const headers = { origin: EVIL, ...bearer(token) };
    for (const [what, path, init] of everyRoute(headers).filter(([what]) =>
      ['fast path POST', 'yoga GET', 'preflight', 'stream preflight'].includes(what),
    )) {
      const answer = await call(s.url, path, init);
      expect({ what, allowOrigin: answer.headers['access-control-allow-origin'] }).toEqual({
        what,
        allowOrigin: '*',
      });
      expect(answer.headers['access-control-allow-credentials']).toBeUndefined();
    }
    const preflight = await call(s.url, '/graphql', {
      method: 'OPTIONS',
      headers: {
        origin: EVIL,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type, authorization',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers['access-control-allow-headers']).toBe('content-type, authorization');
  });

  it('should refuse the tidings_token cookie from a foreign origin on every route', async () => {
    const admin = await hs256({ sub: 'victim', scope: 'events:admin' });
    const cookie = `tidings_token=${admin}`;
    for (const [what, path, init] of everyRoute({ origin: EVIL, cookie })) {
      if (what.includes('preflight')) continue; // a preflight carries no cookie
      const answer = await call(s.url, path, init);
      if (what === 'console') {
        // A static page for anyone; no CORS header lets another site read it.
        expect(answer.headers['access-control-allow-origin']).toBeUndefined();
        continue;
      }
      expect({ what, status: answer.status, code: codeOf(answer) }).toEqual({
        what,
        status: 403,
        code: 'FORBIDDEN',
      });
    }
    expect(await s.app.store.lastSeq()).toBe(0);
    expect(s.app.hub.size).toBe(0);
    // Without an Origin (this server's pages, curl), the cookie works.
    const own = await call(s.url, '/graphql', {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/json' },
      body: json(QUERY),
    });
    expect(own.status).toBe(200);
    expect(own.body?.errors).toBeUndefined();
  });
});

describe('Host names accepted by HOST', () => {
  const accepts = (options: BrowserRulesOptions, host: string) => {
    try {
      createBrowserRules(options).check({ headers: { host } } as IncomingMessage);
      return true;
    } catch {
      return false;
    }
  };

  it('should accept only loopback names and HOST on loopback, and add TIDINGS_ALLOWED_HOSTS', () => {
    for (const host of ['localhost:4000', '127.0.0.1', '[::1]:4000', 'LocalHost:1']) {
      expect(accepts({}, host)).toBe(true);
    }
    for (const host of ['evil.example', '10.0.0.5:4000', '127.0.0.2', 'localhost.']) {
      expect(accepts({}, host)).toBe(false);
    }
    expect(accepts({ host: '127.0.0.2' }, '127.0.0.2:4000')).toBe(true);
    expect(accepts({ host: '::1' }, '[::1]')).toBe(true);
    expect(accepts({ allowedHosts: ['events.example.com'] }, 'events.example.com')).toBe(true);
    expect(accepts({ allowedHosts: ['*'] }, 'anything.example')).toBe(true);
  });

  it('should accept IP literals away from loopback, list or not, and any name with auth unless a list is set', () => {
    const wildcard = { host: '0.0.0.0' };
    expect(accepts(wildcard, '10.0.0.5:4000')).toBe(true);
    expect(accepts(wildcard, '[fd00::5]:4000')).toBe(true);
    expect(accepts(wildcard, 'evil.example')).toBe(false);
    expect(accepts({ ...wildcard, authRequired: true }, 'evil.example')).toBe(true);
    expect(accepts({ host: 'events.example.com' }, 'events.example.com:4000')).toBe(true);
    const listed = { ...wildcard, authRequired: true, allowedHosts: ['events.example.com'] };
    expect(accepts(listed, 'events.example.com')).toBe(true);
    expect(accepts(listed, 'localhost')).toBe(true);
    expect(accepts(listed, 'evil.example')).toBe(false);
    // Probes and scrapers call the pod's address: a list does not refuse IP literals.
    expect(accepts(listed, '10.0.0.5')).toBe(true);
    expect(accepts({ ...listed, authRequired: false }, '[fd00::5]:4000')).toBe(true);
    expect(accepts({ allowedHosts: ['events.example.com'] }, '10.0.0.5')).toBe(false);
  });
});

describe('yoga sees only JSON posts on the exact path /graphql', () => {
  let s: TServer;
  beforeAll(async () => {
    s = await tserver();
  });
  afterAll(() => s.stop());

  /** The bodies a page can post without a preflight, and application/graphql. */
  function bodies(mutation: string): [string, string | undefined, BodyInit][] {
    const form = new FormData();
    form.set('operations', json(mutation));
    form.set('map', '{}');
    return [
      ['form', 'application/x-www-form-urlencoded', new URLSearchParams({ query: mutation })],
      ['multipart', undefined, form],
      ['application/graphql', 'application/graphql', mutation],
      ['text/plain', 'text/plain', json(mutation)],
      ['JSON', 'application/json', json(mutation)],
    ];
  }

  it('should answer 404 on any other path and 415 for anything but JSON on /graphql, storing nothing', async () => {
    for (const path of ['/graphql/', '/x/graphql', '/x/graphql/', '/graphql//', '/GRAPHQL']) {
      for (const [what, type, body] of bodies(PUBLISH)) {
        const res = await fetch(`${s.url}${path}`, {
          method: 'POST',
          headers: type ? { 'content-type': type } : {},
          body,
        });
        const answer = (await res.json()) as Answer['body'];
        expect({
          path,
          what,
          status: res.status,
          code: answer?.errors?.[0]?.extensions?.code,
        }).toEqual({ path, what, status: 404, code: 'NOT_FOUND' });
        expect(answer?.errors?.[0]?.message).toContain('/graphql');
      }
      const get = await call(s.url, `${path}?query=${encodeURIComponent(QUERY)}`);
      expect(get.status).toBe(404);
    }
    for (const [what, type, body] of bodies(PUBLISH).filter(([what]) => what !== 'JSON')) {
      const res = await fetch(`${s.url}/graphql`, {
        method: 'POST',
        headers: type ? { 'content-type': type } : {},
        body,
      });
      expect({ what, status: res.status }).toEqual({ what, status: 415 });
    }
    expect(await s.app.store.lastSeq()).toBe(0);
  });

  it('should take JSON media types in any case, on the fast path and through yoga', async () => {
    for (const type of [
      'Application/JSON',
      'APPLICATION/JSON; Charset=UTF-8',
      'application/graphql-response+json',
    ]) {
      for (const body of [json(PUBLISH), JSON.stringify({ query: PUBLISH, other: 1 })]) {
        const res = await fetch(`${s.url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': type, accept: 'application/json' },
          body,
        });
        const answer = (await res.json()) as { data?: unknown; errors?: unknown };
        // An unknown parameter sends the request on to yoga, which refuses it as yoga does.
        if (body.includes('other'))
          expect({ type, status: res.status }).toEqual({ type, status: 400 });
        else
          expect({ type, answer }).toMatchObject({ type, answer: { data: { publishEvent: {} } } });
      }
    }
    expect(await s.app.store.lastSeq()).toBe(3);
  });
});

describe('requests without Origin from another site (Fetch Metadata)', () => {
  const stream = `/graphql/stream?query=${encodeURIComponent(STREAM_QUERY)}`;

  it('should refuse them on every route without auth, but open the static pages', async () => {
    const s = await tserver();
    try {
      for (const site of ['cross-site', 'same-site']) {
        for (const [what, path, init] of everyRoute({ 'sec-fetch-site': site })) {
          const answer = await call(s.url, path, init);
          if (what === 'console') {
            expect({ what, status: answer.status }).toEqual({ what, status: 200 });
            continue;
          }
          expect({ what, site, status: answer.status, code: codeOf(answer) }).toEqual({
            what,
            site,
            status: 403,
            code: 'FORBIDDEN',
          });
          expect(answer.body?.errors?.[0]?.message).toContain('Sec-Fetch-Site');
        }
        // A link from another site may open GraphiQL.
        const graphiql = await call(s.url, '/graphql', {
          headers: { accept: 'text/html', 'sec-fetch-site': site, 'sec-fetch-mode': 'navigate' },
        });
        expect(graphiql.status).toBe(200);
      }
      expect(await s.app.store.lastSeq()).toBe(0);
      expect(s.app.hub.size).toBe(0);
      expect(readdirSync(heapDir)).toEqual([]);
      // The server's own pages, a typed URL, and clients that are not browsers.
      for (const headers of [
        { 'sec-fetch-site': 'same-origin' },
        { 'sec-fetch-site': 'none' },
        {} as Record<string, string>,
      ]) {
        const opened = await call(s.url, stream, {
          headers: { accept: 'text/event-stream', ...headers },
        });
        expect({ headers, status: opened.status }).toEqual({ headers, status: 200 });
      }
    } finally {
      await s.stop();
    }
  });

  it('should refuse them with the tidings_token cookie under TIDINGS_AUTH=jwt, not with a bearer token', async () => {
    const s = await tserver(JWT_CONFIG);
    try {
      const admin = await hs256({ sub: 'victim', scope: 'events:admin' });
      for (const site of ['cross-site', 'same-site']) {
        const answer = await call(s.url, stream, {
          headers: {
            accept: 'text/event-stream',
            cookie: `tidings_token=${admin}`,
            'sec-fetch-site': site,
          },
        });
        expect({ site, status: answer.status, code: codeOf(answer) }).toEqual({
          site,
          status: 403,
          code: 'FORBIDDEN',
        });
        expect(answer.body?.errors?.[0]?.message).toContain('tidings_token');
      }
      expect(s.app.hub.size).toBe(0);
      const same = await call(s.url, stream, {
        headers: {
          accept: 'text/event-stream',
          cookie: `tidings_token=${admin}`,
          'sec-fetch-site': 'same-origin',
        },
      });
      expect(same.status).toBe(200);
      const withBearer = await call(s.url, stream, {
        headers: { accept: 'text/event-stream', 'sec-fetch-site': 'cross-site', ...bearer(admin) },
      });
      expect(withBearer.status).toBe(200);
    } finally {
      await s.stop();
    }
  });
});

describe('TIDINGS_ALLOWED_HOSTS away from loopback', () => {
  it('should still answer health checks and scrapes that call the IP address', async () => {
    const s = await tserver({
      ...JWT_CONFIG,
      host: '0.0.0.0',
      allowedHosts: ['events.example.com'],
    });
    try {
      const port = new URL(s.url).port;
      for (const host of [`10.0.0.5:${port}`, `[fd00::5]:${port}`, `127.0.0.1:${port}`]) {
        for (const path of ['/healthz', '/readyz', '/metrics']) {
          const answer = await call(`http://127.0.0.1:${port}`, path, { headers: { host } });
          expect({ host, path, status: answer.status }).toEqual({ host, path, status: 200 });
        }
      }
      const named = await call(`http://127.0.0.1:${port}`, '/healthz', {
        headers: { host: `evil.example:${port}` },
      });
      expect(codeOf(named)).toBe('HOST_NOT_ALLOWED');
    } finally {
      await s.stop();
    }
  });
});

describe('GraphiQL', () => {
  it('should not be framed by another page', async () => {
    const s = await tserver();
    try {
      const res = await fetch(`${s.url}/graphql`, { headers: { accept: 'text/html' } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      await res.text();
    } finally {
      await s.stop();
    }
  });
});

describe('Vary: Origin', () => {
  it('should mark every CORS answer of /graphql as varying on Origin, allowed or not', async () => {
    const s = await tserver({ ...JWT_CONFIG, corsOrigins: [APP] });
    try {
      const token = await hs256({ sub: 'app', scope: 'events:read' });
      const post = (origin?: string) => ({
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...bearer(token),
          ...(origin ? { origin } : {}),
        },
        body: json(QUERY),
      });
      const preflight = (origin: string) => ({
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST' },
      });
      for (const [what, path, init] of [
        ['listed', '/graphql', post(APP)],
        ['unlisted', '/graphql', post(EVIL)],
        ['no Origin', '/graphql', post()],
        [
          'yoga GET',
          `/graphql?query=${encodeURIComponent(QUERY)}`,
          { headers: { origin: EVIL, ...bearer(token) } },
        ],
        ['listed preflight', '/graphql', preflight(APP)],
        ['unlisted preflight', '/graphql/stream', preflight(EVIL)],
      ] as const) {
        const answer = await call(s.url, path, init);
        expect({ what, vary: answer.headers.vary }).toEqual({
          what,
          vary: expect.stringMatching(/\bOrigin\b/),
        });
      }
    } finally {
      await s.stop();
    }
  });
});
