/**
 * Bounds on what clients send, over real HTTP: every filter list (of a query, of a stream, live or
 * replayed) at most `TIDINGS_MAX_FILTER_ITEMS` entries. Past a bound the answer is a
 * BAD_USER_INPUT error naming what to change; nothing is stored and the server stays healthy.
 */
import { describe, expect, it } from 'vitest';
import { SEVERITIES } from '../../src/events/types.js';
import { tserver, type TServer } from '../tserver.js';
import { eventsOf, serverWithStreams } from '../transport/helpers.js';

// Streams may name many inboxes here, so that the filter bound is what refuses them.
const t = serverWithStreams({ maxStreamInboxes: 10_000 });

type Errors = { message: string; extensions?: Record<string, unknown> }[] | undefined;

const EVENTS = `query($f: EventFilter) {
  events(filter: $f, first: 500, order: OLDEST_FIRST) { nodes { id type } }
}`;

/** `n` prefixes that match no event of these tests. */
const prefixes = (n: number, stem = 'none') => Array.from({ length: n }, (_, i) => `${stem}${i}.*`);

/** `n` entries for a filter list, of the kind that list takes. */
function entries(list: string, n: number): string[] {
  if (list === 'severities')
    return Array.from({ length: n }, (_, i) => SEVERITIES[i % 6] as string);
  return list === 'types' || list === 'inboxes' ? prefixes(n) : prefixes(n).map((p) => p + 'x');
}

/** Asserts the server still answers its health check and an ordinary query. */
async function expectHealthy(s: TServer): Promise<void> {
  expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
  const res = await s.gql(EVENTS, { f: { types: ['*'] } });
  expect(res.errors).toBeUndefined();
}

function expectRefusal(errors: Errors, field: string, length: number, limit = 100): void {
  expect(errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field, limit });
  expect(errors?.[0]?.message).toBe(
    `[filter] ${field} has ${length} entries, over the limit of ${limit} ` +
      '(TIDINGS_MAX_FILTER_ITEMS): match many at once with a prefix such as "vm.*", or split ' +
      'the request',
  );
}

describe('filter lists', () => {
  it('should refuse 5,000 type or inbox prefixes in a query cleanly, and stay healthy', async () => {
    for (const list of ['types', 'inboxes']) {
      const res = await t.s.gql(EVENTS, { f: { [list]: prefixes(5_000) } });
      expectRefusal(res.errors, `filter.${list}`, 5_000);
      expect(res.data).toBeNull();
    }
    await expectHealthy(t.s);
  });

  it.each(['inboxes', 'types', 'severities', 'categories', 'actions'])(
    'should refuse a query whose filter.%s is past the limit, and accept it at the limit',
    async (list) => {
      const over = await t.s.gql(EVENTS, { f: { [list]: entries(list, 101) } });
      expectRefusal(over.errors, `filter.${list}`, 101);
      const at = await t.s.gql(EVENTS, { f: { [list]: entries(list, 100) } });
      expect(at.errors).toBeUndefined();
    },
  );

  it('should find exactly the matching events with every list at the limit', async () => {
    const inbox = `cap-${crypto.randomUUID()}`;
    const published = await t.s.app.publish([
      { type: 'cap.one', inbox, category: 'c', action: 'a', severity: 'ERROR' },
      { type: 'cap.two', inbox, category: 'c', action: 'a', severity: 'WARNING' },
      { type: 'cap.one', inbox, category: 'other', action: 'a', severity: 'ERROR' },
      { type: 'other', inbox, category: 'c', action: 'a', severity: 'ERROR' },
    ]);
    const res = await t.s.gql<{ events: { nodes: { id: string }[] } }>(EVENTS, {
      f: {
        inboxes: [...prefixes(99), inbox],
        types: [...prefixes(99), 'cap.*'],
        severities: entries('severities', 100),
        categories: [...entries('categories', 99), 'c'],
        actions: [...entries('actions', 99), 'a'],
      },
    });
    expect(res.errors).toBeUndefined();
    expect(res.data?.events.nodes.map((n) => n.id)).toEqual(published.slice(0, 2).map((e) => e.id));
  });

  it('should apply a configured TIDINGS_MAX_FILTER_ITEMS', async () => {
    const small = await tserver({ maxFilterItems: 3 });
    try {
      const over = await small.gql(EVENTS, { f: { categories: ['a', 'b', 'c', 'd'] } });
      expectRefusal(over.errors, 'filter.categories', 4, 3);
      const at = await small.gql(EVENTS, { f: { categories: ['a', 'b', 'c'] } });
      expect(at.errors).toBeUndefined();
    } finally {
      await small.stop();
    }
  });

  describe.each([false, true])('streams (single connection: %s)', (singleConnection) => {
    it.each<[string, Record<string, unknown>, number]>([
      ['filter.types', { filter: { types: prefixes(5_000) } }, 5_000],
      ['filter.inboxes', { filter: { inboxes: prefixes(5_000) } }, 5_000],
      ['inboxes', { inboxes: prefixes(5_000) }, 5_000],
      ['filter.severities', { filter: { severities: entries('severities', 101) } }, 101],
      ['filter.actions', { filter: { actions: entries('actions', 101) } }, 101],
    ])(
      'should refuse a replaying stream whose %s is past the limit, registering nothing',
      async (field, variables, length) => {
        await t.s.app.publish([{ type: 'bounds.before' }]);
        const sub = await t.subs.open(t.s.client({ singleConnection }), {
          ...variables,
          after: '000000000000',
        });
        await sub.next(1);
        expectRefusal(sub.results[0]?.errors, field, length);
        expect(sub.results).toHaveLength(1);
        expect(t.s.app.hub.size).toBe(0);
        await expectHealthy(t.s);
      },
    );

    it('should replay, then go on live, with every list at the limit', async () => {
      const inbox = `cap-${crypto.randomUUID()}`;
      const [first, second] = await t.s.app.publish([
        { type: 'cap.one', inbox, category: 'c', action: 'a' },
        { type: 'cap.two', inbox, category: 'c', action: 'a' },
        { type: 'cap.one', inbox, category: 'other', action: 'a' },
      ]);
      const sub = await t.subs.open(t.s.client({ singleConnection }), {
        inboxes: [...prefixes(99), inbox],
        filter: {
          inboxes: [...prefixes(99), inbox],
          types: [...prefixes(99), 'cap.*'],
          severities: entries('severities', 100),
          categories: [...entries('categories', 99), 'c'],
          actions: [...entries('actions', 99), 'a'],
        },
        after: first?.cursor,
      });
      const [live] = await t.s.app.publish([
        { type: 'cap.three', inbox, category: 'c', action: 'a' },
        { type: 'other', inbox, category: 'c', action: 'a' },
        { type: 'cap.end', inbox, category: 'c', action: 'a' },
      ]);
      await sub.next(3);
      expect(eventsOf(sub).map((e) => e.type)).toEqual(['cap.two', 'cap.three', 'cap.end']);
      expect(eventsOf(sub)[0]?.id).toBe(second?.id);
      expect(eventsOf(sub)[1]?.id).toBe(live?.id);
    });
  });
});
