/**
 * graphql-ws with `TIDINGS_AUTH=jwt`: the token comes in `connection_init`'s payload
 * (`authorization: Bearer …` or `token`), or with the upgrade request (the `tidings_token` cookie,
 * `Authorization`); the principal is fixed for the socket and its permissions hold; a missing or
 * refused token closes the socket with 4403, an expiring one ends its streams with
 * `TOKEN_EXPIRED` and then the socket. A page of a foreign origin cannot ride on the cookie.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hs256, JWT_CONFIG } from '../auth/tokens.js';
import { tserver, tsubscribe, type TServer } from '../tserver.js';
import { STREAM_QUERY, waitFor } from './helpers.js';
import { twsRaw, twsRefusal, twsUrl } from './tws.js';

let s: TServer;
let reader: string;
beforeAll(async () => {
  s = await tserver(JWT_CONFIG);
  reader = await hs256({ sub: 'ws-reader', scope: 'events:read', inboxes: ['mine'] });
});
afterEach(() => waitFor(() => s.app.hub.size === 0, 'every stream to end'));
afterAll(() => s.stop());

const MINE = 'subscription { eventStream(inboxes: ["mine"]) { id inbox } }';

/** Subscribes to `mine` on a raw socket and resolves once `ev-<tag>` arrived through it. */
async function receivesThrough(raw: Awaited<ReturnType<typeof twsRaw>>, tag: string) {
  raw.send({ id: tag, type: 'subscribe', payload: { query: MINE } });
  await waitFor(() => s.app.hub.size === 1, 'the stream');
  await s.app.publish([{ id: `ev-${tag}`, type: 't', inbox: 'mine' }]);
  const next = await raw.waitFor((m) => m.id === tag && m.type === 'next', 'the event');
  expect(next.payload).toEqual({ data: { eventStream: { id: `ev-${tag}`, inbox: 'mine' } } });
  raw.ws.close();
  await waitFor(() => s.app.hub.size === 0, 'the stream to end');
}

describe('graphql-ws authentication', () => {
  it.each([
    ['authorization: Bearer', 'lower', (t: string) => ({ authorization: `Bearer ${t}` })],
    ['Authorization: Bearer', 'upper', (t: string) => ({ Authorization: `Bearer ${t}` })],
    ['token', 'token', (t: string) => ({ token: t })],
  ])('should take the token of connectionParams as %s', async (_how, tag, params) => {
    const sub = tsubscribe<{ eventStream: { id: string } }>(
      s.ws({ connectionParams: params(reader) }),
      MINE,
    );
    await waitFor(() => s.app.hub.size === 1, 'the stream');
    await s.app.publish([{ id: `p-${tag}`, type: 't', inbox: 'mine' }]);
    await sub.next(1);
    expect(sub.results).toEqual([{ data: { eventStream: { id: `p-${tag}`, inbox: 'mine' } } }]);
    sub.unsubscribe();
    await waitFor(() => s.app.hub.size === 0, 'the stream to end');
  });

  it('should take the tidings_token cookie of the upgrade request', async () => {
    const raw = await twsRaw(twsUrl(s.url), { headers: { cookie: `tidings_token=${reader}` } });
    await raw.init();
    await receivesThrough(raw, 'cookie');
  });

  it('should take the Authorization header of the upgrade request', async () => {
    const raw = await twsRaw(twsUrl(s.url), { headers: { authorization: `Bearer ${reader}` } });
    await raw.init();
    await receivesThrough(raw, 'header');
  });

  it('should hold the token’s permissions for every operation of the socket', async () => {
    const raw = await twsRaw(twsUrl(s.url));
    await raw.init({ token: reader });
    raw.send({
      id: 'theirs',
      type: 'subscribe',
      payload: { query: 'subscription { eventStream(inboxes: ["theirs"]) { id } }' },
    });
    const answer = await raw.waitFor((m) => m.id === 'theirs', 'the answer');
    expect(JSON.stringify(answer.payload)).toMatch(/FORBIDDEN/);
    raw.send({
      id: 'publish',
      type: 'subscribe',
      payload: { query: 'mutation { publishEvent(input: { type: "t", inbox: "mine" }) { id } }' },
    });
    const published = await raw.waitFor((m) => m.id === 'publish', 'the mutation’s answer');
    expect(JSON.stringify(published.payload)).toMatch(/FORBIDDEN/);
    expect(s.app.hub.size).toBe(0);
    raw.ws.close();
  });

  it('should close with 4403 and say how to authenticate when connection_init brings no token', async () => {
    const raw = await twsRaw(twsUrl(s.url));
    raw.send({ type: 'connection_init' });
    const { code, reason } = await raw.closed;
    expect(code).toBe(4403);
    expect(reason).toMatch(/connectionParams.*authorization.*Bearer/);
    expect(raw.messages).toEqual([]);
  });

  it.each([
    [
      'a token signed with another key',
      () => hs256({ sub: 'x' }, { secret: 'another-secret-long-enough-for-hs256!!' }),
    ],
    ['a malformed token', async () => 'not.a.jwt'],
    ['an authorization that is not Bearer', async () => null],
  ])('should close with 4403 on %s', async (_what, token) => {
    const t = await token();
    const raw = await twsRaw(twsUrl(s.url));
    raw.send({
      type: 'connection_init',
      payload: t === null ? { authorization: 'Basic abc' } : { authorization: `Bearer ${t}` },
    });
    const { code, reason } = await raw.closed;
    expect(code).toBe(4403);
    expect(reason).toMatch(/^Forbidden/);
  });

  it('should end the streams of a socket whose token expires with TOKEN_EXPIRED, then close it with 4403', async () => {
    const exp = Math.floor(Date.now() / 1000) + 2;
    const short = await hs256({ sub: 'brief', scope: 'events:read' }, { expiresIn: exp });
    const raw = await twsRaw(twsUrl(s.url));
    await raw.init({ token: short });
    raw.send({ id: 'e', type: 'subscribe', payload: { query: STREAM_QUERY } });
    const { code, reason } = await raw.closed;
    expect(code).toBe(4403);
    expect(reason).toMatch(/expired/);
    expect(Date.now()).toBeGreaterThanOrEqual(exp * 1000);
    const ofStream = raw.messages.filter((m) => m.id === 'e');
    expect(ofStream.map((m) => m.type)).toEqual(['next', 'complete']);
    expect(JSON.stringify(ofStream[0]?.payload)).toMatch(/TOKEN_EXPIRED/);
  });
});

describe('graphql-ws and foreign origins with TIDINGS_AUTH=jwt', () => {
  it('should refuse the upgrade of a foreign origin that carries the cookie with 403', async () => {
    const refusal = await twsRefusal(twsUrl(s.url), {
      headers: { origin: 'https://evil.example', cookie: `tidings_token=${reader}` },
    });
    expect(refusal.status).toBe(403);
    expect(refusal.body?.errors?.[0]?.message).toMatch(/tidings_token cookie is refused/);
  });

  it('should let a foreign origin in that proves itself with a token in connection_init', async () => {
    const raw = await twsRaw(twsUrl(s.url), { headers: { origin: 'https://app.example' } });
    await raw.init({ authorization: `Bearer ${reader}` });
    await receivesThrough(raw, 'foreign');
  });
});
