import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type EventsQuery,
  EventDocument,
  EventsDocument,
  PublishEventDocument,
  PublishEventsDocument,
  type EventsQueryVariables,
} from '../../src/client/generated/graphql.js';
import { tserver, type TResult, type TServer } from '../tserver.js';

let s: TServer;
beforeAll(async () => {
  s = await tserver();
});
afterAll(() => s.stop());

/** All cursors of the events matching `variables`, walking forward page by page. */
async function walkForward(variables: EventsQueryVariables, pageSize: number): Promise<string[]> {
  const seen: string[] = [];
  let after: string | null = null;
  for (;;) {
    const res: TResult<EventsQuery> = await s.op(EventsDocument, {
      ...variables,
      first: pageSize,
      after,
    });
    expect(res.errors).toBeUndefined();
    const conn = res.data!.events;
    seen.push(...conn.edges.map((e) => e.cursor));
    if (!conn.pageInfo.hasNextPage) return seen;
    after = conn.pageInfo.endCursor!;
  }
}

async function walkBackward(variables: EventsQueryVariables, pageSize: number): Promise<string[]> {
  const seen: string[] = [];
  let before: string | null = null;
  for (;;) {
    const res: TResult<EventsQuery> = await s.op(EventsDocument, {
      ...variables,
      last: pageSize,
      before,
    });
    expect(res.errors).toBeUndefined();
    const conn = res.data!.events;
    seen.unshift(...conn.edges.map((e) => e.cursor));
    if (!conn.pageInfo.hasPreviousPage) return seen;
    before = conn.pageInfo.startCursor!;
  }
}

describe('publishEvent → events round trip', () => {
  it('should store every field of the event model and return it from event(id) and events', async () => {
    const input = {
      id: 'round-trip-1',
      type: 'vm.state_changed',
      inbox: 'pdfm',
      clientId: 'host-7',
      message: 'VM started',
      body: { state: 'running', cpu: [1, 2], nested: { ok: true } },
      severity: 'WARNING' as const,
      category: 'connection',
      action: 'register',
      resource: { type: 'vm', id: 'vm-42' },
      actor: 'alice',
      source: 'orchestrator',
      parentId: 'parent-0',
      correlationId: 'corr-1',
      timestamp: '2026-01-31T12:00:00.000Z',
    };
    const published = await s.op(PublishEventDocument, { input });
    expect(published.errors).toBeUndefined();
    const event = published.data!.publishEvent;
    expect(event).toMatchObject({ ...input, cursor: expect.stringMatching(/^[0-9a-z]{12}$/) });
    expect(Date.parse(event.receivedAt)).toBeGreaterThan(Date.now() - 60_000);

    const byId = await s.op(EventDocument, { id: 'round-trip-1' });
    expect(byId.data!.event).toEqual(event);
    const listed = await s.op(EventsDocument, { filter: { inboxes: ['pdfm'] }, first: 10 });
    expect(listed.data!.events.edges.map((e) => e.node)).toContainEqual(event);
  });

  it('should default the id to a UUIDv7, the inbox to global, the severity to INFO and the time to now', async () => {
    const before = Date.now();
    const res = await s.op(PublishEventDocument, { input: { type: 'defaults.check' } });
    const e = res.data!.publishEvent;
    expect(e.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(e).toMatchObject({ inbox: 'global', severity: 'INFO', clientId: null, body: null });
    expect(Date.parse(e.timestamp)).toBeGreaterThanOrEqual(before - 5);
  });

  it('should return the stored event, not a second one, when the same id is published twice', async () => {
    const input = { id: 'idem-1', type: 'idem.test', body: { a: 1 } };
    const first = await s.op(PublishEventDocument, { input });
    const second = await s.op(PublishEventDocument, { input });
    expect(second.data!.publishEvent).toEqual(first.data!.publishEvent);
    const listed = await s.op(EventsDocument, { filter: { types: ['idem.test'] } });
    expect(listed.data!.events.edges).toHaveLength(1);
  });

  it('should refuse the same id with other content as CONFLICT and keep the first', async () => {
    await s.op(PublishEventDocument, {
      input: { id: 'idem-2', type: 'idem.conflict', message: 'a' },
    });
    const res = await s.op(PublishEventDocument, {
      input: { id: 'idem-2', type: 'idem.conflict', message: 'b' },
    });
    expect(res.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    const stored = await s.op(EventDocument, { id: 'idem-2' });
    expect(stored.data!.event!.message).toBe('a');
  });

  it('should store a publishEvents batch in order with increasing cursors', async () => {
    const res = await s.op(PublishEventsDocument, {
      inputs: [1, 2, 3].map((n) => ({ type: 'batch.item', message: `n${n}` })),
    });
    const cursors = res.data!.publishEvents.map((e) => e.cursor);
    expect(res.data!.publishEvents.map((e) => e.message)).toEqual(['n1', 'n2', 'n3']);
    expect([...cursors].sort()).toEqual(cursors);
  });

  it('should store nothing of a batch with one invalid event', async () => {
    const res = await s.op(PublishEventsDocument, {
      inputs: [{ type: 'batch.atomic' }, { type: '' }, { type: 'batch.atomic' }],
    });
    expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(res.errors?.[0]?.message).toMatch(/event 1 of the batch/);
    const listed = await s.op(EventsDocument, { filter: { types: ['batch.atomic'] } });
    expect(listed.data!.events.edges).toHaveLength(0);
  });
});

describe('events query', () => {
  const inbox = 'paging';
  const total = 23;
  beforeAll(async () => {
    await s.app.publish(
      Array.from({ length: total }, (_, i) => ({ type: 'page.item', inbox, message: `m${i}` })),
    );
  });

  it('should list newest first by default and oldest first on request', async () => {
    const newest = await s.op(EventsDocument, { filter: { inboxes: [inbox] }, first: 3 });
    expect(newest.data!.events.edges.map((e) => e.node.message)).toEqual(['m22', 'm21', 'm20']);
    const oldest = await s.op(EventsDocument, {
      filter: { inboxes: [inbox] },
      first: 3,
      order: 'OLDEST_FIRST',
    });
    expect(oldest.data!.events.edges.map((e) => e.node.message)).toEqual(['m0', 'm1', 'm2']);
  });

  it.each(['NEWEST_FIRST', 'OLDEST_FIRST'] as const)(
    'should page forward and backward in %s order with no gap and no duplicate',
    async (order) => {
      const all = await s.op(EventsDocument, { filter: { inboxes: [inbox] }, first: 100, order });
      const expected = all.data!.events.edges.map((e) => e.cursor);
      expect(expected).toHaveLength(total);
      for (const size of [1, 4, 7, 23, 50]) {
        expect(await walkForward({ filter: { inboxes: [inbox] }, order }, size)).toEqual(expected);
        expect(await walkBackward({ filter: { inboxes: [inbox] }, order }, size)).toEqual(expected);
      }
    },
  );

  it('should report page boundaries exactly', async () => {
    const first = await s.op(EventsDocument, { filter: { inboxes: [inbox] }, first: 5 });
    expect(first.data!.events.pageInfo).toMatchObject({
      hasNextPage: true,
      hasPreviousPage: false,
    });
    const next = await s.op(EventsDocument, {
      filter: { inboxes: [inbox] },
      first: 100,
      after: first.data!.events.pageInfo.endCursor,
    });
    expect(next.data!.events.edges).toHaveLength(total - 5);
    expect(next.data!.events.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: true });
  });

  it('should refuse first and last together, a negative or too large page, and a foreign cursor', async () => {
    const both = await s.op(EventsDocument, { first: 1, last: 1 });
    expect(both.errors?.[0]?.message).toMatch(/either first or last/);
    const big = await s.op(EventsDocument, { first: 100_000 });
    expect(big.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const negative = await s.op(EventsDocument, { last: -1 });
    expect(negative.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const cursor = await s.op(EventsDocument, { after: 'not-a-cursor' });
    expect(cursor.errors?.[0]?.extensions?.code).toBe('BAD_CURSOR');
  });
});

describe('events filters over GraphQL', () => {
  const inbox = 'filters';
  beforeAll(async () => {
    await s.app.publish([
      {
        id: 'f1',
        inbox,
        type: 'vm.start',
        severity: 'INFO',
        category: 'c1',
        action: 'a1',
        actor: 'ann',
        source: 's1',
        timestamp: '2026-01-01T00:00:00Z',
        resource: { type: 'vm', id: 'v1' },
        correlationId: 'k1',
      },
      {
        id: 'f2',
        inbox,
        type: 'vm.stop',
        severity: 'ERROR',
        category: 'c2',
        action: 'a2',
        actor: 'bob',
        source: 's2',
        timestamp: '2026-01-02T00:00:00Z',
        resource: { type: 'vm', id: 'v2' },
        parentId: 'f1',
      },
      {
        id: 'f3',
        inbox,
        type: 'host.up',
        severity: 'SUCCESS',
        category: 'c1',
        action: 'a2',
        actor: 'ann',
        source: 's2',
        timestamp: '2026-01-03T00:00:00Z',
        resource: { type: 'host', id: 'h1' },
        correlationId: 'k1',
      },
      { id: 'f4', inbox: 'filters-other', type: 'vm.start' },
    ]);
  });

  const cases: [string, EventsQueryVariables['filter'], string[]][] = [
    ['inboxes', {}, ['f1', 'f2', 'f3']],
    ['types exact', { types: ['vm.stop'] }, ['f2']],
    ['types prefix', { types: ['vm.*'] }, ['f1', 'f2']],
    ['severities', { severities: ['ERROR', 'SUCCESS'] }, ['f2', 'f3']],
    ['categories', { categories: ['c1'] }, ['f1', 'f3']],
    ['actions', { actions: ['a2'] }, ['f2', 'f3']],
    ['resourceType', { resourceType: 'vm' }, ['f1', 'f2']],
    ['resourceId', { resourceId: 'h1' }, ['f3']],
    ['actor', { actor: 'ann' }, ['f1', 'f3']],
    ['source', { source: 's2' }, ['f2', 'f3']],
    ['correlationId', { correlationId: 'k1' }, ['f1', 'f3']],
    ['parentId', { parentId: 'f1' }, ['f2']],
    ['since', { since: '2026-01-02T00:00:00Z' }, ['f2', 'f3']],
    ['until', { until: '2026-01-02T00:00:00Z' }, ['f1']],
    ['combined', { types: ['vm.*'], actor: 'bob' }, ['f2']],
  ];
  it.each(cases)('should filter by %s', async (_name, filter, ids) => {
    const res = await s.op(EventsDocument, {
      filter: { inboxes: [inbox], ...filter },
      order: 'OLDEST_FIRST',
    });
    expect(res.errors).toBeUndefined();
    expect(res.data!.events.edges.map((e) => e.node.id)).toEqual(ids);
  });
});
