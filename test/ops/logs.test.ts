/**
 * Logs: every request has a request id (the client's `x-request-id`, else a new one) that is
 * echoed back and carried by its log lines, with the caller's subject and client id; a stream
 * logs one line when it opens and one when it ends, with why; publishes log their correlation ids.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../src/cli/serve.js';
import { bearer, hs256, JWT_CONFIG } from '../auth/tokens.js';
import { rawStream, waitFor, type RawStream } from '../transport/helpers.js';
import { arrayLogger, type LogLine } from './tops.js';

const PUBLISH = 'mutation($i: PublishEventInput!) { publishEvent(input: $i) { id } }';
const STREAM =
  'subscription($clientId: String) { eventStream(inboxes: ["pdfm", "hosts-*"], clientId: $clientId) { cursor } }';

let s: RunningServer;
const { logger, lines } = arrayLogger('debug');
let admin: Record<string, string>;
let host: Record<string, string>;
beforeAll(async () => {
  s = await startServer(
    { port: 0, host: '127.0.0.1', store: 'sqlite::memory:', ...JWT_CONFIG },
    { logger },
  );
  admin = bearer(await hs256({ sub: 'root', scope: 'events:admin events:publish' }));
  host = bearer(await hs256({ sub: 'host-7', client_id: 'h7', scope: 'events:read' }));
});
afterAll(() => s.stop());

async function post(query: string, variables: object, headers: Record<string, string>) {
  return fetch(`${s.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
}

async function openStream(headers: Record<string, string>): Promise<RawStream> {
  const url = new URL('/graphql/stream', s.url);
  url.searchParams.set('query', STREAM);
  url.searchParams.set('variables', JSON.stringify({ clientId: 'h7' }));
  const before = s.app.hub.size;
  const raw = await rawStream(url.toString(), {
    headers: { accept: 'text/event-stream', ...host, ...headers },
  });
  await waitFor(() => s.app.hub.size > before, 'the stream');
  return raw;
}

const find = (predicate: (line: LogLine) => boolean) => lines.filter(predicate);

describe('request ids', () => {
  it("should echo the client's x-request-id, and make one up when there is none or it is unusable", async () => {
    const mine = await post(
      '{ events(first: 1) { nodes { id } } }',
      {},
      {
        ...admin,
        'x-request-id': 'trace-42.a',
      },
    );
    expect(mine.headers.get('x-request-id')).toBe('trace-42.a');
    const sends: Record<string, string>[] = [{}, { 'x-request-id': 'has spaces and\ttabs' }];
    for (const sent of sends) {
      const res = await fetch(`${s.url}/healthz`, { headers: sent });
      expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f]{8}-[0-9a-z]+$/);
    }
    const unauthorised = await post('{ events { nodes { id } } }', {}, {});
    expect(unauthorised.status).toBe(401);
    expect(unauthorised.headers.get('x-request-id')).toMatch(/^[0-9a-f]{8}-[0-9a-z]+$/);
  });

  it('should echo the request id on the answers of the stream endpoint, errors and preflights included', async () => {
    const stream = `${s.url}/graphql/stream`;
    const answers = [
      await fetch(stream, { method: 'PUT', headers: { ...host, 'x-request-id': 'put-1' } }),
      await fetch(stream, {
        method: 'POST',
        headers: {
          ...host,
          accept: 'text/event-stream',
          'content-type': 'text/plain',
          'x-request-id': 'bad-1',
        },
        body: 'x',
      }),
      await fetch(stream, { method: 'OPTIONS', headers: { 'x-request-id': 'pre-1' } }),
      await fetch(stream, { headers: { accept: 'text/event-stream', 'x-request-id': 'anon-1' } }),
    ];
    expect(answers.map((r) => [r.status, r.headers.get('x-request-id')])).toEqual([
      [201, 'put-1'],
      [415, 'bad-1'],
      [204, 'pre-1'],
      [401, 'anon-1'],
    ]);
  });

  it('should log each request at debug with its id, status, duration and caller', async () => {
    await post('{ events(first: 1) { nodes { id } } }', {}, { ...admin, 'x-request-id': 'req-1' });
    await waitFor(() => find((l) => l.reqId === 'req-1').length > 0, 'the line');
    expect(find((l) => l.reqId === 'req-1')).toEqual([
      expect.objectContaining({
        level: 20,
        msg: 'request completed',
        method: 'POST',
        path: '/graphql',
        status: 200,
        durationMs: expect.any(Number),
        subject: 'root',
      }),
    ]);
  });

  it('should log publishes at debug with their correlation ids', async () => {
    const res = await post(
      'mutation($i: [PublishEventInput!]!) { publishEvents(inputs: $i) { id } }',
      {
        i: [
          { type: 'job.started', correlationId: 'corr-9' },
          { type: 'job.step', correlationId: 'corr-9' },
          { type: 'job.other' },
        ],
      },
      admin,
    );
    const { data } = (await res.json()) as { data: { publishEvents: { id: string }[] } };
    const line = find((l) => l.msg === 'events published' && l.count === 3)[0];
    expect(line).toMatchObject({
      level: 20,
      correlationIds: ['corr-9'],
      ids: data.publishEvents.map((e) => e.id),
    });
  });
});

describe('stream lines', () => {
  it('should log a stream opening and ending, with its request id, caller, inboxes, deliveries and reason', async () => {
    const raw = await openStream({ 'x-request-id': 'stream-req-1' });
    expect(raw.response.headers.get('x-request-id')).toBe('stream-req-1');
    const opened = find((l) => l.msg === 'stream opened' && l.reqId === 'stream-req-1');
    expect(opened).toEqual([
      expect.objectContaining({
        level: 30,
        streamId: expect.any(String),
        mode: 'distinct',
        subject: 'host-7',
        clientId: 'h7',
        inboxes: ['pdfm', 'hosts-*'],
      }),
    ]);
    for (const type of ['vm.started', 'vm.stopped']) {
      expect((await post(PUBLISH, { i: { type, inbox: 'pdfm' } }, admin)).status).toBe(200);
    }
    await waitFor(() => raw.frames.filter((f) => f.event === 'next').length === 2, '2 events');
    raw.close();
    await waitFor(() => find((l) => l.msg === 'stream ended').length === 1, 'the end line');
    expect(find((l) => l.msg === 'stream ended')[0]).toEqual(
      expect.objectContaining({
        level: 30,
        reqId: 'stream-req-1',
        streamId: opened[0]?.streamId,
        mode: 'distinct',
        subject: 'host-7',
        clientId: 'h7',
        durationMs: expect.any(Number),
        eventsDelivered: 2,
        reason: 'client_gone',
      }),
    );
  });

  it('should say when a stream was ended by an admin, its token was revoked, or the server shut down', async () => {
    const reasons = () =>
      find((l) => l.msg === 'stream ended' && String(l.reqId).startsWith('why-')).map((l) => [
        l.reqId,
        l.reason,
      ]);
    const ended = await openStream({ 'x-request-id': 'why-ended' });
    expect(await (await post('mutation { endStreams(clientId: "h7") }', {}, admin)).json()).toEqual(
      { data: { endStreams: 1 } },
    );
    await ended.waitEnd();
    const revokedToken = bearer(
      await hs256({ sub: 'host-8', client_id: 'h7', scope: 'events:read', jti: 'tok-8' }),
    );
    const revoked = await openStream({ 'x-request-id': 'why-revoked', ...revokedToken });
    await post('mutation { revokeToken(jti: "tok-8") }', {}, admin);
    await revoked.waitEnd();
    await openStream({ 'x-request-id': 'why-shutdown' });
    await s.stop();
    expect(reasons()).toEqual([
      ['why-ended', 'ended_by_admin'],
      ['why-revoked', 'token_revoked'],
      ['why-shutdown', 'shutdown'],
    ]);
  });
});
