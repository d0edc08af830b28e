/**
 * The `graphql-transport-ws` protocol as graphql-ws's PROTOCOL.md states it, message by message
 * with a raw `ws` client: the close codes of a misbehaving client (4400, 4401, 4408, 4409, 4429),
 * ping and pong both ways, the keepalive that drops a silent socket, and the bounds (message size,
 * operations per socket). And the upgrade refusals, answered in HTTP with a JSON body.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tserver, type TServer } from '../tserver.js';
import { STREAM_QUERY, waitFor } from './helpers.js';
import { twsRaw, twsRefusal, twsUrl } from './tws.js';

let s: TServer;
beforeAll(async () => {
  s = await tserver({ keepaliveMs: 300, maxRequestBytes: 64 * 1024 });
});
afterAll(() => s.stop());

const subscribe = (id: string, query = STREAM_QUERY) => ({
  id,
  type: 'subscribe',
  payload: { query, variables: { inboxes: ['proto'] } },
});

describe('graphql-transport-ws close codes', () => {
  it('should acknowledge connection_init, then close with 4429 on a second one', async () => {
    const raw = await twsRaw(twsUrl(s.url));
    await raw.init({ anything: 'goes' });
    raw.send({ type: 'connection_init' });
    expect(await raw.closed).toEqual({ code: 4429, reason: 'Too many initialisation requests' });
  });

  it('should close with 4401 on subscribe before connection_ack, and run nothing', async () => {
    const raw = await twsRaw(twsUrl(s.url));
    raw.send(subscribe('early'));
    expect((await raw.closed).code).toBe(4401);
    expect(s.app.hub.size).toBe(0);
  });

  it('should close with 4408 when no connection_init comes within 3 seconds', async () => {
    const raw = await twsRaw(twsUrl(s.url));
    const started = Date.now();
    const closed = await raw.closed;
    expect(closed).toEqual({ code: 4408, reason: 'Connection initialisation timeout' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_900);
  });

  it('should close with 4409 when a subscribe reuses the id of a running operation', async () => {
    const raw = await twsRaw(twsUrl(s.url));
    await raw.init();
    raw.send(subscribe('twice'));
    await waitFor(() => s.app.hub.size === 1, 'the stream');
    raw.send(subscribe('twice'));
    expect(await raw.closed).toEqual({ code: 4409, reason: 'Subscriber for twice already exists' });
    await waitFor(() => s.app.hub.size === 0, 'the stream to end with its socket');
  });

  it.each([
    ['not JSON', '{'],
    ['not an object', '[1]'],
    ['an unknown type', { type: 'start', id: '1' }],
    ['a server message', { type: 'next', id: '1', payload: {} }],
    ['a subscribe without id', { type: 'subscribe', payload: { query: '{ __typename }' } }],
    ['a subscribe without query', { type: 'subscribe', id: '1', payload: {} }],
    ['bad variables', { type: 'subscribe', id: '1', payload: { query: 'x', variables: [] } }],
  ])('should close with 4400 on %s', async (_what, message) => {
    const raw = await twsRaw(twsUrl(s.url));
    await raw.init();
    raw.send(message);
    const { code, reason } = await raw.closed;
    expect(code).toBe(4400);
    expect(reason).toMatch(/^Invalid/);
  });

  it('should close with 1009 a message larger than TIDINGS_MAX_REQUEST_BYTES', async () => {
    const raw = await twsRaw(twsUrl(s.url));
    await raw.init();
    raw.send(subscribe('big', `{ __typename }${' '.repeat(65 * 1024)}`));
    expect((await raw.closed).code).toBe(1009);
  });
});

describe('graphql-transport-ws ping and pong', () => {
  it('should answer a ping with a pong carrying its payload', async () => {
    const raw = await twsRaw(twsUrl(s.url));
    raw.send({ type: 'ping', payload: { n: 1 } });
    expect(await raw.waitFor((m) => m.type === 'pong', 'the pong')).toEqual({
      type: 'pong',
      payload: { n: 1 },
    });
    raw.ws.close();
  });

  it('should ping on the keepalive interval, keep a socket that answers, and drop one that does not', async () => {
    const answering = await twsRaw(twsUrl(s.url));
    const silent = await twsRaw(twsUrl(s.url), { silent: true });
    await Promise.all([answering.init(), silent.init()]);
    // The silent one is pinged, stays silent for an interval, and is dropped (no closing frame).
    const { code } = await silent.closed;
    expect(code).toBe(1006);
    expect(silent.messages.filter((m) => m.type === 'ping').length).toBeGreaterThanOrEqual(1);
    await waitFor(
      () => answering.messages.filter((m) => m.type === 'ping').length >= 3,
      'three pings',
    );
    expect(answering.ws.readyState).toBe(answering.ws.OPEN);
    answering.ws.close();
  });
});

describe('graphql-transport-ws bounds', () => {
  it('should refuse the 101st running operation of a socket with LIMIT_EXCEEDED, and take one again once one completes', async () => {
    const raw = await twsRaw(twsUrl(s.url));
    await raw.init();
    for (let i = 0; i < 100; i++) raw.send(subscribe(`op${i}`));
    await waitFor(() => s.app.hub.size === 100, '100 streams');
    raw.send(subscribe('op100'));
    const refused = await raw.waitFor((m) => m.id === 'op100', 'the refusal');
    expect(refused.type).toBe('error');
    expect(refused.payload).toMatchObject([{ extensions: { code: 'LIMIT_EXCEEDED' } }]);
    raw.send({ id: 'op0', type: 'complete' });
    await waitFor(() => s.app.hub.size === 99, 'the completed stream to end');
    raw.send(subscribe('op100'));
    await waitFor(() => s.app.hub.size === 100, 'the 100th stream again');
    raw.ws.close();
    await waitFor(() => s.app.hub.size === 0, 'every stream to end with the socket');
  });
});

describe('refused upgrades', () => {
  it('should refuse a socket that does not offer graphql-transport-ws with 400 and say which to use', async () => {
    for (const protocols of [[], ['graphql-ws']]) {
      const refusal = await twsRefusal(twsUrl(s.url), { protocols });
      expect(refusal.status).toBe(400);
      expect(refusal.body?.errors?.[0]?.message).toMatch(/graphql-transport-ws/);
    }
  });

  it('should refuse an upgrade elsewhere than /graphql and /graphql/ws with 404', async () => {
    const refusal = await twsRefusal(twsUrl(s.url, '/graphql/stream'));
    expect(refusal.status).toBe(404);
    expect(refusal.body?.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });

  it('should refuse a Host that does not name the server with 403 HOST_NOT_ALLOWED', async () => {
    const refusal = await twsRefusal(twsUrl(s.url), { headers: { host: 'rebound.example' } });
    expect(refusal.status).toBe(403);
    expect(refusal.body?.errors?.[0]?.extensions?.code).toBe('HOST_NOT_ALLOWED');
  });

  it('should refuse a foreign Origin without auth with 403, and take the server’s own', async () => {
    const refusal = await twsRefusal(twsUrl(s.url), {
      headers: { origin: 'https://evil.example' },
    });
    expect(refusal.status).toBe(403);
    expect(refusal.body?.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const own = await twsRaw(twsUrl(s.url), { headers: { origin: s.url } });
    await own.init();
    own.ws.close();
  });
});
