/**
 * Tidings reports its own trouble as `tidings.*` events in the `system` inbox, which only admins
 * can read (or publish to), throttled per type.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { StoreError } from '../../src/errors.js';
import type { PublishEventInput } from '../../src/events/validate.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import type { EventStore } from '../../src/store/types.js';
import { createSystemEvents } from '../../src/observability/system.js';
import { bearer, hs256, JWT_CONFIG } from '../auth/tokens.js';
import { tserver } from '../tserver.js';
import { dataOf, rawStream, waitFor, type RawStream } from '../transport/helpers.js';

const STREAM =
  'subscription($inboxes: [String!]) { eventStream(inboxes: $inboxes) { type inbox severity body } }';

async function stream(url: string, variables: object, headers: Record<string, string>) {
  const u = new URL('/graphql/stream', url);
  u.searchParams.set('query', STREAM);
  u.searchParams.set('variables', JSON.stringify(variables));
  return rawStream(u.toString(), { headers: { accept: 'text/event-stream', ...headers } });
}

const types = (r: RawStream) =>
  r.frames
    .filter((f) => f.event === 'next')
    .map((f) => dataOf<{ data?: { eventStream: { type: string } } }>(f).data?.eventStream.type);

describe('system events', () => {
  it('should report refused tokens in bulk to admins only, and keep the system inbox theirs', async () => {
    const s = await tserver(JWT_CONFIG);
    const open: RawStream[] = [];
    try {
      const admin = bearer(await hs256({ sub: 'ops', scope: 'events:admin' }));
      const reader = bearer(await hs256({ sub: 'app', scope: 'events:read events:publish' }));
      open.push(await stream(s.url, { inboxes: ['system'] }, admin));
      open.push(await stream(s.url, {}, reader));
      await waitFor(() => s.app.hub.size === 2, 'both streams');
      for (let i = 0; i < 20; i++) {
        const res = await fetch(`${s.url}/graphql`, { headers: { authorization: 'Bearer nope' } });
        await res.body?.cancel();
      }
      const [ops, app] = open as [RawStream, RawStream];
      const frame = await ops.waitFor((f) => f.event === 'next', 'the report');
      const event = dataOf<{
        data: { eventStream: { type: string; inbox: string; severity: string; body: unknown } };
      }>(frame).data.eventStream;
      expect(event).toMatchObject({
        type: 'tidings.auth.rejected',
        inbox: 'system',
        severity: 'WARNING',
        body: { refused: 20, byCode: { UNAUTHENTICATED: 20 } },
      });
      // The non-admin stream, which reads every inbox it may, never saw it.
      const [mine] = await s.app.publish([{ type: 'app.event', inbox: 'apps' }]);
      await app.waitFor((f) => f.id === mine?.cursor, 'its own event');
      expect(types(app)).toEqual(['app.event']);
      const page = await s.gql(
        '{ events(filter: { types: ["tidings.*"] }) { nodes { type } } }',
        {},
        reader,
      );
      expect(page.data).toEqual({ events: { nodes: [] } });
      const denied = await s.gql(
        '{ events(filter: { inboxes: ["system"] }) { nodes { type } } }',
        {},
        reader,
      );
      expect(denied.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      const spoof = await s.gql(
        'mutation { publishEvent(input: { type: "tidings.fake", inbox: "system" }) { id } }',
        {},
        reader,
      );
      expect(spoof.errors?.[0]?.message).toMatch(/Tidings' own events, for admins/);
    } finally {
      for (const r of open) r.close();
      await s.stop();
    }
  });

  it('should report a failing store', async () => {
    const inner = createSqliteStore({ path: ':memory:' });
    // The store refuses ordinary events (a full disk, say) but still takes the report.
    const failing: EventStore = {
      ...inner,
      append: (events) =>
        events.every((e) => e.inbox === 'system')
          ? inner.append(events)
          : Promise.reject(new StoreError('[store:sqlite] append failed: disk I/O error')),
    };
    const s = await tserver({}, { store: failing });
    try {
      const res = await s.gql('mutation { publishEvent(input: { type: "x" }) { id } }');
      expect(res.errors?.[0]?.extensions?.code).toBe('STORE_ERROR');
      let reported = (await inner.readAfter(0, [], 10)).events;
      for (let i = 0; reported.length === 0 && i < 100; i++) {
        await new Promise((r) => setTimeout(r, 20));
        reported = (await inner.readAfter(0, [], 10)).events;
      }
      expect(reported.map((e) => [e.type, e.inbox, e.severity])).toEqual([
        ['tidings.store.error', 'system', 'ERROR'],
      ]);
    } finally {
      await s.stop();
    }
  });

  it('should fold reports of one type within the throttle window into the next', async () => {
    const published: PublishEventInput[] = [];
    let now = 0;
    const system = createSystemEvents({
      publish: async (inputs) => {
        published.push(...inputs);
        return [];
      },
      logger: pino({ level: 'silent' }),
      throttleMs: 1_000,
      now: () => now,
    });
    system.report('tidings.test', 'WARNING', 'one');
    system.report('tidings.test', 'WARNING', 'two');
    system.report('tidings.other', 'ERROR', 'other');
    now = 500;
    system.report('tidings.test', 'WARNING', 'three');
    now = 1_500;
    system.report('tidings.test', 'WARNING', 'four', { n: 4 });
    expect(published.map((p) => [p.type, p.message, p.body])).toEqual([
      ['tidings.test', 'one', {}],
      ['tidings.other', 'other', {}],
      ['tidings.test', 'four', { n: 4, alsoSinceLastReport: 2 }],
    ]);
  });
});

describe('log level at run time', () => {
  it('should let an admin change the log level, and no one else', async () => {
    const s = await tserver(JWT_CONFIG);
    try {
      const admin = bearer(await hs256({ sub: 'ops', scope: 'events:admin' }));
      const reader = bearer(await hs256({ sub: 'app', scope: 'events:read' }));
      const set = (level: string, headers: Record<string, string>) =>
        s.gql(`mutation { setLogLevel(level: ${level}) }`, {}, headers);
      expect(await set('DEBUG', admin)).toEqual({ data: { setLogLevel: 'SILENT' } });
      expect(s.app.logger.level).toBe('debug');
      expect(await set('WARN', admin)).toEqual({ data: { setLogLevel: 'DEBUG' } });
      const denied = await set('TRACE', reader);
      expect(denied.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      expect(s.app.logger.level).toBe('warn');
      const bad = await set('LOUD', admin);
      expect(bad.errors?.[0]?.message).toMatch(/LOUD/);
    } finally {
      s.app.logger.level = 'silent';
      await s.stop();
    }
  });
});
