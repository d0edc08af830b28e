/**
 * The bytes on the wire, read with plain `fetch`: headers that forbid buffering and compression,
 * the `retry:` hint, `id:` lines carrying cursors, the `complete` frame, keepalive comments,
 * `Last-Event-ID` resumption and streams on `/graphql`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tserver, type TServer } from '../tserver.js';
import { bearer, hs256, JWT_CONFIG } from '../auth/tokens.js';
import {
  dataOf,
  rawPost,
  rawStream,
  STREAM_QUERY,
  waitFor,
  type RawStream,
  serverWithRawStreams,
} from './helpers.js';

const t = serverWithRawStreams();
const { open } = t;

/** Opens a raw stream and remembers it for cleanup. */
async function track(opening: Promise<RawStream>): Promise<RawStream> {
  const raw = await opening;
  open.push(raw);
  return raw;
}

const streamUrl = () => `${t.s.url}/graphql/stream`;

/** A GET URL carrying the operation in query parameters, as an `EventSource` would use. */
function getUrl(path: string, variables: Record<string, unknown>, query = STREAM_QUERY): string {
  const url = new URL(path, t.s.url);
  url.searchParams.set('query', query);
  url.searchParams.set('variables', JSON.stringify(variables));
  return url.toString();
}

/** The `next` frames of a raw stream, with their data parsed. */
function nextFrames(raw: RawStream) {
  return raw.frames
    .filter((f) => f.event === 'next')
    .map((f) => ({
      id: f.id,
      result: dataOf<{ data?: { eventStream: { cursor: string; type: string } } }>(f),
    }));
}

/** Waits until the hub counts `n` streams. */
const registered = (n: number) => waitFor(() => t.s.app.hub.size === n, `${n} registered streams`);

describe('event stream responses', () => {
  it('should answer with text/event-stream, no-cache, X-Accel-Buffering: no and no compression', async () => {
    const raw = await track(
      rawPost(streamUrl(), STREAM_QUERY, { inboxes: ['wire'] }, { 'accept-encoding': 'gzip, br' }),
    );
    expect(raw.response.status).toBe(200);
    expect(raw.response.headers.get('content-type')).toMatch(/^text\/event-stream\b/);
    expect(raw.response.headers.get('cache-control')).toBe('no-cache');
    expect(raw.response.headers.get('x-accel-buffering')).toBe('no');
    expect(raw.response.headers.get('content-encoding')).toBeNull();
  });

  it('should start with a retry: hint', async () => {
    const raw = await track(rawPost(streamUrl(), STREAM_QUERY, { inboxes: ['wire'] }));
    const first = await raw.waitFor(() => true, 'a first frame');
    expect(first.retry).toBe(String(t.s.app.config.retryMs));
    expect(first.raw).toBe(`retry: ${t.s.app.config.retryMs}`);
  });

  it('should put the event cursor on the id: line of every next frame, replayed or live', async () => {
    const stored = await t.s.app.publish([
      { type: 'wire.a', inbox: 'wire-ids' },
      { type: 'wire.b', inbox: 'wire-ids' },
    ]);
    const raw = await track(
      rawPost(streamUrl(), STREAM_QUERY, { inboxes: ['wire-ids'], after: stored[0]?.cursor }),
    );
    await registered(1);
    const live = await t.s.app.publish([
      { type: 'wire.c', inbox: 'wire-ids' },
      { type: 'wire.d', inbox: 'wire-ids' },
    ]);
    await waitFor(() => nextFrames(raw).length === 3, '3 next frames');
    const frames = nextFrames(raw);
    expect(frames.map((f) => f.id)).toEqual([stored[1], ...live].map((e) => e?.cursor));
    for (const f of frames) expect(f.id).toBe(f.result.data?.eventStream.cursor);
    // Exactly: id, event, data.
    const first = raw.frames.find((f) => f.event === 'next');
    expect(first?.raw.split('\n').map((line) => line.split(':')[0])).toEqual([
      'id',
      'event',
      'data',
    ]);
  });

  it('should end a query sent over SSE with a next frame and `event: complete` with an empty data line', async () => {
    const raw = await track(rawPost(streamUrl(), '{ __typename }'));
    await raw.waitEnd();
    expect(raw.frames.map((f) => f.raw)).toEqual([
      `retry: ${t.s.app.config.retryMs}`,
      'event: next\ndata: {"data":{"__typename":"Query"}}',
      'event: complete\ndata:',
    ]);
  });

  it('should stream on GET /graphql with Accept: text/event-stream', async () => {
    const [stored] = await t.s.app.publish([{ type: 'on.graphql', inbox: 'wire-graphql' }]);
    const raw = await track(
      rawStream(getUrl('/graphql', { inboxes: ['wire-graphql'], after: '000000000000' }), {
        headers: { accept: 'text/event-stream' },
      }),
    );
    expect(raw.response.headers.get('content-type')).toMatch(/^text\/event-stream\b/);
    await raw.waitFor((f) => f.event === 'next', 'a next frame');
    expect(nextFrames(raw)[0]?.id).toBe(stored?.cursor);
    await registered(1);
    const [live] = await t.s.app.publish([{ type: 'on.graphql.live', inbox: 'wire-graphql' }]);
    await waitFor(() => nextFrames(raw).length === 2, 'the live frame');
    expect(nextFrames(raw)[1]?.id).toBe(live?.cursor);
  });

  it('should stream on POST /graphql with Accept: text/event-stream', async () => {
    const raw = await track(
      rawPost(`${t.s.url}/graphql`, STREAM_QUERY, { inboxes: ['wire-post'] }),
    );
    expect(raw.response.headers.get('content-type')).toMatch(/^text\/event-stream\b/);
    await registered(1);
    const [live] = await t.s.app.publish([{ type: 'posted', inbox: 'wire-post' }]);
    await waitFor(() => nextFrames(raw).length === 1, 'the live frame');
    expect(nextFrames(raw)[0]?.id).toBe(live?.cursor);
  });
});

describe('Last-Event-ID', () => {
  it('should resume a plain GET stream after the Last-Event-ID cursor, then go on live', async () => {
    const stored = await t.s.app.publish(
      Array.from({ length: 5 }, (_, i) => ({ type: `resume.${i}`, inbox: 'wire-resume' })),
    );
    const raw = await track(
      rawStream(getUrl('/graphql/stream', { inboxes: ['wire-resume'] }), {
        headers: { accept: 'text/event-stream', 'last-event-id': stored[1]?.cursor ?? '' },
      }),
    );
    await waitFor(() => nextFrames(raw).length === 3, 'the replay');
    await registered(1);
    const [live] = await t.s.app.publish([{ type: 'resume.live', inbox: 'wire-resume' }]);
    await waitFor(() => nextFrames(raw).length === 4, 'the live frame');
    expect(nextFrames(raw).map((f) => f.id)).toEqual(
      [...stored.slice(2), live].map((e) => e?.cursor),
    );
  });

  it('should resume from Last-Event-ID, not from the URL `after`, when an EventSource reconnects', async () => {
    const stored = await t.s.app.publish(
      Array.from({ length: 5 }, (_, i) => ({ type: `reconnect.${i}`, inbox: 'wire-reconnect' })),
    );
    // The page opened the EventSource with after = stored[0]; it received up to stored[3] and
    // reconnects with the same URL, the browser adding Last-Event-ID.
    const url = getUrl('/graphql/stream', {
      inboxes: ['wire-reconnect'],
      after: stored[0]?.cursor,
    });
    const raw = await track(
      rawStream(url, {
        headers: { accept: 'text/event-stream', 'last-event-id': stored[3]?.cursor ?? '' },
      }),
    );
    await registered(1);
    const [live] = await t.s.app.publish([{ type: 'reconnect.live', inbox: 'wire-reconnect' }]);
    await waitFor(
      () => nextFrames(raw).some((f) => f.id === live?.cursor),
      'the live frame after the replay',
    );
    expect(nextFrames(raw).map((f) => f.id)).toEqual([stored[4], live].map((e) => e?.cursor));
  });

  it('should refuse a malformed Last-Event-ID with a BAD_CURSOR error, then complete', async () => {
    const raw = await track(
      rawStream(getUrl('/graphql/stream', { inboxes: ['wire-bad'] }), {
        headers: { accept: 'text/event-stream', 'last-event-id': 'garbage' },
      }),
    );
    await raw.waitEnd();
    const next = raw.frames.find((f) => f.event === 'next');
    expect(next && dataOf(next).errors?.[0]?.extensions?.code).toBe('BAD_CURSOR');
    expect(raw.frames.at(-1)?.event).toBe('complete');
  });
});

describe('keepalive', () => {
  let fast: TServer;
  beforeAll(async () => {
    fast = await tserver({ keepaliveMs: 200 });
  });
  afterAll(() => fast.stop());

  it('should send `:` comments every keepaliveMs on an idle stream', async () => {
    const started = Date.now();
    const raw = await rawPost(`${fast.url}/graphql/stream`, STREAM_QUERY, { inboxes: ['idle'] });
    try {
      await waitFor(() => raw.frames.filter((f) => f.comment).length >= 2, 'two keepalives', 3_000);
      const comments = raw.frames.filter((f) => f.comment);
      expect(comments[0]?.raw).toBe(':');
      expect(Date.now() - started).toBeGreaterThanOrEqual(200);
      expect(raw.frames.some((f) => f.event !== null)).toBe(false);
    } finally {
      raw.close();
    }
  });
});

describe('HEAD on a stream URL', () => {
  it('should answer the status a GET would open with, and open no stream', async () => {
    const ok = await fetch(getUrl('/graphql/stream', { inboxes: ['head'] }), { method: 'HEAD' });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toMatch(/^text\/event-stream\b/);
    expect(await ok.text()).toBe('');
    const bad = await fetch(getUrl('/graphql/stream', {}, 'subscription { nope }'), {
      method: 'HEAD',
    });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('tidings-error-code')).toBe('GRAPHQL_VALIDATION_FAILED');
    const cursor = await fetch(getUrl('/graphql/stream', { after: 'not-a-cursor' }), {
      method: 'HEAD',
    });
    expect(cursor.status).toBe(400);
    expect(cursor.headers.get('tidings-error-code')).toBe('BAD_CURSOR');
    // Nothing was registered with the hub by any of them.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(t.s.app.hub.size).toBe(0);
  });
});

describe('HEAD on a stream URL with auth', () => {
  let secured: TServer;
  beforeAll(async () => {
    secured = await tserver(JWT_CONFIG);
  });
  afterAll(() => secured?.stop());

  it('should answer 401 without a token and 403 for an inbox the token does not cover', async () => {
    const url = (variables: Record<string, unknown>) => {
      const u = new URL('/graphql/stream', secured.url);
      u.searchParams.set('query', STREAM_QUERY);
      u.searchParams.set('variables', JSON.stringify(variables));
      return u.toString();
    };
    expect((await fetch(url({}), { method: 'HEAD' })).status).toBe(401);
    const token = await hs256({ sub: 'reader', scope: 'events:read', inboxes: ['mine'] });
    const forbidden = await fetch(url({ inboxes: ['theirs'] }), {
      method: 'HEAD',
      headers: bearer(token),
    });
    expect(forbidden.status).toBe(403);
    expect(forbidden.headers.get('tidings-error-code')).toBe('FORBIDDEN');
    const allowed = await fetch(url({ inboxes: ['mine'] }), {
      method: 'HEAD',
      headers: bearer(token),
    });
    expect(allowed.status).toBe(200);
    expect(secured.app.hub.size).toBe(0);
  });
});
