/**
 * `TIDINGS_AUTH=jwt` end to end on a real server: 401 for bad tokens, scopes, the inboxes claim,
 * client ids, one visibility rule for the query and the stream (inside the store query, so pages
 * stay whole), streams that end with their token, CORS, and cutting people off.
 */
import { createClient } from 'graphql-sse';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { tserver, tsubscribe, type TServer } from '../tserver.js';
import { dataOf, rawStream, waitFor, type RawStream } from '../transport/helpers.js';
import { bearer, hs256, JWT_CONFIG, unsigned } from './tokens.js';

let s: TServer;
let admin: Record<string, string>;
const open: RawStream[] = [];
beforeAll(async () => {
  s = await tserver({ ...JWT_CONFIG, corsOrigins: ['https://app.example.com'] });
  admin = bearer(await hs256({ sub: 'root', scope: 'events:admin' }));
});
afterEach(async () => {
  for (const r of open.splice(0)) r.close();
  await waitFor(() => s.app.hub.size === 0, 'every stream to close');
});
afterAll(() => s.stop());

const PUBLISH = 'mutation($i: PublishEventInput!) { publishEvent(input: $i) { id cursor } }';
const STREAM =
  'subscription($inboxes: [String!], $clientId: String) { eventStream(inboxes: $inboxes, clientId: $clientId) { id inbox clientId } }';

/** A raw GET stream of {@link STREAM} with `variables`, as `headers` allow. */
async function stream(variables: Record<string, unknown>, headers: Record<string, string>) {
  const url = new URL('/graphql/stream', s.url);
  url.searchParams.set('query', STREAM);
  url.searchParams.set('variables', JSON.stringify(variables));
  const raw = await rawStream(url.toString(), {
    headers: { accept: 'text/event-stream', ...headers },
  });
  open.push(raw);
  return raw;
}

/** The code of the first error of a raw stream's first `next` frame. */
async function firstErrorCode(raw: RawStream): Promise<unknown> {
  const frame = await raw.waitFor((f) => f.event === 'next', 'a next frame');
  return dataOf(frame).errors?.[0]?.extensions?.code;
}

async function token(claims: Parameters<typeof hs256>[0], options?: Parameters<typeof hs256>[1]) {
  return bearer(await hs256(claims, options));
}

/** POSTs `body` to /graphql as `headers` allow; the raw response, for its status. */
function post(body: object, headers: Record<string, string>): Promise<Response> {
  return fetch(`${s.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

describe('authentication', () => {
  it.each([
    ['no token', {}, /No token: send "Authorization: Bearer <token>"/],
    [
      'an unsigned token',
      { authorization: `Bearer ${unsigned({ sub: 'x', scope: 'events:admin' })}` },
      /algorithm is not accepted/,
    ],
    ['garbage', { authorization: 'Bearer garbage' }, /malformed/],
  ])(
    'should answer %s with 401 on every endpoint, and store nothing',
    async (_what, headers, message) => {
      for (const [path, init] of [
        [
          '/graphql',
          {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...headers },
            body: JSON.stringify({ query: PUBLISH, variables: { i: { type: 'x' } } }),
          },
        ],
        [
          '/graphql/stream',
          { method: 'GET', headers: { accept: 'text/event-stream', ...headers } },
        ],
        ['/graphql/stream', { method: 'PUT', headers }],
      ] as const) {
        const res = await fetch(`${s.url}${path}`, init);
        expect(res.status).toBe(401);
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
        const body = (await res.json()) as {
          errors: { message: string; extensions: { code: string } }[];
        };
        expect(body.errors[0]?.message).toMatch(message);
      }
      expect(await s.app.store.lastSeq()).toBe(0);
    },
  );

  it('should answer a token without "sub" with 401 UNAUTHENTICATED, saying the claim is needed', async () => {
    // Without a subject a caller would escape the publish rate, the stream limit and revocation.
    const anonymous = await token({ scope: 'events:admin' });
    for (const send of [
      () => post({ query: PUBLISH, variables: { i: { type: 'anon.x' } } }, anonymous),
      () =>
        fetch(`${s.url}/graphql/stream`, {
          headers: { accept: 'text/event-stream', ...anonymous },
        }),
    ]) {
      const res = await send();
      expect(res.status).toBe(401);
      const body = (await res.json()) as { errors: { message: string; extensions: object }[] };
      expect(body.errors[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED' });
      expect(body.errors[0]?.message).toMatch(/no "sub" claim/);
    }
    expect(await s.app.store.lastSeq()).toBe(0);
  });

  it('should refuse a token issued in the future beyond the clock skew, which revocation would miss', async () => {
    const now = Math.floor(Date.now() / 1000);
    const ahead = await token({ sub: 'ahead', scope: 'events:admin' }, { issuedAt: now + 3600 });
    const res = await post({ query: '{ events { edges { cursor } } }' }, ahead);
    expect(res.status).toBe(401);
    const body = (await res.json()) as { errors: { message: string; extensions: object }[] };
    expect(body.errors[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(body.errors[0]?.message).toMatch(/"iat" claim .* in the future/);
    // Within the skew (30 s by default) a clock a little ahead is still fine.
    const close = await token({ sub: 'ahead', scope: 'events:read' }, { issuedAt: now + 5 });
    const ok = await s.gql('{ events { edges { cursor } } }', {}, close);
    expect(ok.errors).toBeUndefined();
  });

  it('should keep /healthz, /readyz and the GraphiQL page open', async () => {
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${s.url}/readyz`)).status).toBe(200);
    const page = await fetch(`${s.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    await page.body?.cancel();
  });
});

describe('scopes', () => {
  it('should refuse each operation without its scope, saying which scope is missing', async () => {
    const reader = await token({ sub: 'reader', scope: 'events:read' });
    const publisher = await token({ sub: 'publisher', scope: 'events:publish' });
    const denied = await s.gql(PUBLISH, { i: { type: 'x' } }, reader);
    expect(denied.errors?.[0]).toMatchObject({
      extensions: { code: 'FORBIDDEN', missingScope: 'events:publish' },
    });
    expect(denied.errors?.[0]?.message).toMatch(/subject "reader" may not publish events/);
    const query = await s.gql('{ events { edges { cursor } } }', {}, publisher);
    expect(query.errors?.[0]?.extensions).toMatchObject({
      code: 'FORBIDDEN',
      missingScope: 'events:read',
    });
    expect(await firstErrorCode(await stream({}, publisher))).toBe('FORBIDDEN');
    const end = await s.gql('mutation { endStreams(subject: "x") }', {}, reader);
    expect(end.errors?.[0]?.extensions).toMatchObject({ missingScope: 'events:admin' });
  });
});

describe('inboxes and clients', () => {
  it('should apply one visibility rule to pages and streams, inside the store query', async () => {
    const scoped = await token({
      sub: 'svc',
      scope: 'events:read events:publish',
      inboxes: ['mine', 'hosts-*'],
    });
    const stream1 = await stream({}, scoped);
    await waitFor(() => s.app.hub.size === 1, 'the stream');
    // 30 events: a third in each of an allowed inbox, an allowed pattern and a foreign inbox.
    const inboxes = ['mine', 'hosts-7', 'theirs'];
    const stored = await s.app.publish(
      Array.from({ length: 30 }, (_, i) => ({ type: 'vis', inbox: inboxes[i % 3] as string })),
    );
    const visible = stored.filter((e) => e.inbox !== 'theirs').map((e) => e.id);
    // Pages of 4: whole pages of visible events, never a short page from filtering afterwards.
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const page: {
        data?: {
          events: {
            edges: { node: { id: string } }[];
            pageInfo: { hasNextPage: boolean; endCursor: string };
          };
        };
      } = await s.gql(
        'query($after: String) { events(first: 4, after: $after, order: OLDEST_FIRST, filter: { types: ["vis"] }) { edges { node { id } } pageInfo { hasNextPage endCursor } } }',
        { after },
        scoped,
      );
      const edges = page.data?.events.edges ?? [];
      expect(edges.length === 4 || !page.data?.events.pageInfo.hasNextPage).toBe(true);
      seen.push(...edges.map((e) => e.node.id));
      if (!page.data?.events.pageInfo.hasNextPage) break;
      after = page.data.events.pageInfo.endCursor;
    }
    expect(seen).toEqual(visible);
    await stream1.waitFor((f) => f.id === stored.at(-2)?.cursor, 'the last visible event');
    expect(stream1.frames.filter((f) => f.event === 'next').map((f) => f.id)).toEqual(
      stored.filter((e) => e.inbox !== 'theirs').map((e) => e.cursor),
    );
    // Naming a foreign inbox is an error, not an empty result.
    expect(await firstErrorCode(await stream({ inboxes: ['theirs'] }, scoped))).toBe('FORBIDDEN');
    const foreign = await s.gql(
      '{ events(filter: { inboxes: ["theirs"] }) { edges { cursor } } }',
      {},
      scoped,
    );
    expect(foreign.errors?.[0]?.message).toMatch(/may not read inbox "theirs"/);
    const publish = await s.gql(PUBLISH, { i: { type: 'x', inbox: 'theirs' } }, scoped);
    expect(publish.errors?.[0]?.message).toMatch(/may not publish to inbox "theirs"/);
    const allowed = await s.gql(PUBLISH, { i: { type: 'x', inbox: 'hosts-9' } }, scoped);
    expect(allowed.errors).toBeUndefined();
  });

  it('should show targeted events to their client and to admins only', async () => {
    const host7 = await token({ sub: 'agent', client_id: 'host-7', scope: 'events:read' });
    const host8 = await token({ sub: 'other-agent', client_id: 'host-8', scope: 'events:read' });
    expect(await firstErrorCode(await stream({ inboxes: ['t'], clientId: 'host-8' }, host7))).toBe(
      'FORBIDDEN',
    );
    const own = await stream({ inboxes: ['t'], clientId: 'host-7' }, host7);
    const broadcastOnly = await stream({ inboxes: ['t'] }, host8);
    const all = await stream({ inboxes: ['t'], clientId: 'host-8' }, admin);
    await waitFor(() => s.app.hub.size === 3, 'the streams');
    const [forHost7, forAll, forHost8] = await s.app.publish([
      { type: 'to', inbox: 't', clientId: 'host-7' },
      { type: 'to', inbox: 't' },
      { type: 'to', inbox: 't', clientId: 'host-8' },
    ]);
    await own.waitFor((f) => f.id === forAll?.cursor, 'the broadcast');
    await broadcastOnly.waitFor((f) => f.id === forAll?.cursor, 'the broadcast');
    await all.waitFor((f) => f.id === forHost8?.cursor, 'host-8’s event');
    const ids = (r: RawStream) => r.frames.filter((f) => f.event === 'next').map((f) => f.id);
    expect(ids(own)).toEqual([forHost7?.cursor, forAll?.cursor]);
    expect(ids(broadcastOnly)).toEqual([forAll?.cursor]);
    expect(ids(all)).toEqual([forAll?.cursor, forHost8?.cursor]);
    const page = await s.gql<{ events: { nodes: { id: string }[] } }>(
      '{ events(filter: { inboxes: ["t"] }, order: OLDEST_FIRST) { nodes { id } } }',
      {},
      host7,
    );
    expect(page.data?.events.nodes.map((n) => n.id)).toEqual([forHost7?.id, forAll?.id]);
    const byId = await s.gql<{ event: null }>(`{ event(id: "${forHost8?.id}") { id } }`, {}, host7);
    expect(byId.data?.event).toBeNull();
  });
});

describe('streams and tokens', () => {
  it('should end a stream when its token expires, with TOKEN_EXPIRED, then complete', async () => {
    const expiring = await hs256(
      { sub: 'brief', scope: 'events:read' },
      { expiresIn: Math.floor(Date.now() / 1000) + 2 },
    );
    const client = createClient({
      url: `${s.url}/graphql/stream`,
      headers: bearer(expiring),
      retryAttempts: 0,
    });
    try {
      const sub = tsubscribe(client, STREAM, { inboxes: ['exp'] });
      await waitFor(() => s.app.hub.size === 1, 'the stream');
      await waitFor(() => sub.completed || !!sub.failure, 'the end of the stream', 5_000);
      expect(sub.failure).toBeNull();
      expect(sub.results.at(-1)?.errors?.[0]?.extensions?.code).toBe('TOKEN_EXPIRED');
    } finally {
      client.dispose();
    }
  });

  it('should let an admin end every stream of a subject or a client at once', async () => {
    const a = await token({ sub: 'alice', scope: 'events:read', client_id: 'a-host' });
    const b = await token({ sub: 'bob', scope: 'events:read' });
    const aliceStreams = [
      await stream({ inboxes: ['x'] }, a),
      await stream({ inboxes: ['y'], clientId: 'a-host' }, a),
    ];
    const bobs = await stream({ inboxes: ['x'] }, b);
    await waitFor(() => s.app.hub.size === 3, 'the streams');
    const ended = await s.gql('mutation { endStreams(subject: "alice") }', {}, admin);
    expect(ended.data).toEqual({ endStreams: 2 });
    for (const r of aliceStreams) {
      expect(await firstErrorCode(r)).toBe('STREAM_ENDED');
      await r.waitEnd();
    }
    expect(bobs.ended).toBe(false);
    const byClient = await s.gql('mutation { endStreams(clientId: "bob") }', {}, admin);
    expect(byClient.data).toEqual({ endStreams: 1 });
    const bad = await s.gql('mutation { endStreams }', {}, admin);
    expect(bad.errors?.[0]?.message).toMatch(/either subject or clientId/);
  });

  it('should revoke a token at once: its streams end and it is refused from then on', async () => {
    const jti = 'revoke-me';
    const doomed = await token({ sub: 'mallory', scope: 'events:read', jti });
    const sibling = await token({ sub: 'mallory', scope: 'events:read', jti: 'sibling' });
    const r = await stream({ inboxes: ['z'] }, doomed);
    const kept = await stream({ inboxes: ['z'] }, sibling);
    await waitFor(() => s.app.hub.size === 2, 'the streams');
    const revoked = await s.gql(
      'mutation($jti: String) { revokeToken(jti: $jti) }',
      { jti },
      admin,
    );
    expect(revoked.data).toEqual({ revokeToken: 1 });
    expect(await firstErrorCode(r)).toBe('TOKEN_REVOKED');
    const again = await fetch(`${s.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...doomed },
      body: JSON.stringify({ query: '{ events { nodes { id } } }' }),
    });
    expect(again.status).toBe(401);
    expect(kept.ended).toBe(false);
    // Every token of the subject issued until now.
    expect((await s.gql('mutation { revokeToken(subject: "mallory") }', {}, admin)).data).toEqual({
      revokeToken: 1,
    });
    expect(await firstErrorCode(kept)).toBe('TOKEN_REVOKED');
    const refused = await fetch(`${s.url}/graphql/stream`, {
      headers: { accept: 'text/event-stream', ...sibling },
    });
    expect(refused.status).toBe(401);
    await refused.body?.cancel();
  });

  it('should accept the tidings_token cookie, for EventSource', async () => {
    const jwt = await hs256({ sub: 'browser', scope: 'events:read' });
    const r = await stream({ inboxes: ['c'] }, { cookie: `tidings_token=${jwt}` });
    await waitFor(() => s.app.hub.size === 1, 'the stream');
    const [e] = await s.app.publish([{ type: 'c', inbox: 'c' }]);
    await r.waitFor((f) => f.id === e?.cursor, 'the event');
  });
});

describe('CORS', () => {
  it('should allow credentials for the configured origins only', async () => {
    const preflight = (origin: string) =>
      fetch(`${s.url}/graphql/stream`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'GET' },
      });
    const ok = await preflight('https://app.example.com');
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(ok.headers.get('access-control-allow-credentials')).toBe('true');
    const other = await preflight('https://evil.example');
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    const yoga = await fetch(`${s.url}/graphql`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' },
    });
    expect(yoga.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(yoga.headers.get('access-control-allow-credentials')).toBe('true');
  });
});
