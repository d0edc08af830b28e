/**
 * Bounds on what clients send, over real HTTP: every filter list (of a query, of a stream, live or
 * replayed) at most `TIDINGS_MAX_FILTER_ITEMS` entries, and only dates that exist (a published
 * `timestamp`, a filter's `since` and `until`). Past a bound the answer is a BAD_USER_INPUT error
 * naming what to change; nothing is stored and the server stays healthy.
 */
import { describe, expect, it } from 'vitest';
import { SEVERITIES } from '../../src/events/types.js';
import { tserver, type TServer } from '../tserver.js';
import {
  dataOf,
  eventsOf,
  rawPost,
  serverWithStreams,
  STREAM_QUERY,
} from '../transport/helpers.js';

// Streams may name many inboxes here, so that the filter bound is what refuses them.
const t = serverWithStreams({ maxStreamInboxes: 10_000 });

type Errors = { message: string; extensions?: Record<string, unknown> }[] | undefined;

const EVENTS = `query($f: EventFilter) {
  events(filter: $f, first: 500, order: OLDEST_FIRST) { nodes { id type } }
}`;
const PUBLISH = `mutation($e: PublishEventInput!) { publishEvent(input: $e) { id timestamp } }`;

/** `n` prefixes that match no event of these tests. */
const prefixes = (n: number, stem = 'none') => Array.from({ length: n }, (_, i) => `${stem}${i}.*`);

/** `n` entries for a filter list, of the kind that list takes. */
function entries(list: string, n: number): string[] {
  if (list === 'severities')
    return Array.from({ length: n }, (_, i) => SEVERITIES[i % 6] as string);
  return list === 'types' || list === 'inboxes' ? prefixes(n) : prefixes(n).map((p) => p + 'x');
}

/**
 * A filter with every list at the default limit, matching the events of `inbox` of a `cap.*`
 * type, category `c` and action `a`.
 */
function filterAtLimit(inbox: string): Record<string, string[]> {
  return {
    inboxes: [...prefixes(99), inbox],
    types: [...prefixes(99), 'cap.*'],
    severities: entries('severities', 100),
    categories: [...entries('categories', 99), 'c'],
    actions: [...entries('actions', 99), 'a'],
  };
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
      f: filterAtLimit(inbox),
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
        filter: filterAtLimit(inbox),
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

describe('impossible dates', () => {
  const IMPOSSIBLE: [string, RegExp][] = [
    ['2020-02-30T00:00:00Z', /day 30 does not exist: February 2020 has 29 days/],
    ['2023-02-29T12:00:00Z', /day 29 does not exist: February 2023 has 28 days/],
    ['2100-02-29T12:00:00Z', /February 2100 has 28 days/],
    ['2026-04-31T12:00:00+02:00', /April 2026 has 30 days/],
    ['2026-01-01T24:00:00Z', /hour 24 does not exist/],
    ['2026-01-01T23:60:00Z', /minute 60 does not exist/],
    ['2026-01-01T23:59:60Z', /second 60 does not exist/],
    ['2026-13-01T00:00:00Z', /month 13 does not exist/],
    ['2026-00-10T00:00:00Z', /month 00 does not exist/],
    ['2026-01-00T00:00:00Z', /day 00 does not exist/],
    ['2026-01-01T12:00:00+24:00', /offset 24:00 is out of range/],
  ];

  it.each(IMPOSSIBLE)(
    'should refuse %s in publishes, queries and streams, storing nothing',
    async (date, why) => {
      const before = await t.s.app.store.lastSeq();
      const expectDateError = (errors: Errors) => {
        expect(errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
        expect(errors?.[0]?.message).toMatch(/DateTime must be an existing ISO 8601 date-time/);
        expect(errors?.[0]?.message).toMatch(why);
      };
      expectDateError(
        (
          await t.s.gql(
            `mutation { publishEvent(input: { type: "d", timestamp: "${date}" }) { id } }`,
          )
        ).errors,
      );
      expectDateError((await t.s.gql(PUBLISH, { e: { type: 'd', timestamp: date } })).errors);
      const batch = await t.s.gql(
        'mutation($i: [PublishEventInput!]!) { publishEvents(inputs: $i) { id } }',
        { i: [{ type: 'd' }, { type: 'd', timestamp: date }] },
      );
      expectDateError(batch.errors);
      expectDateError((await t.s.gql(EVENTS, { f: { since: date } })).errors);
      expectDateError((await t.s.gql(EVENTS, { f: { until: date } })).errors);
      const stream = await rawPost(`${t.s.url}/graphql/stream`, STREAM_QUERY, {
        filter: { since: date },
        after: '000000000000',
      });
      const frame = await stream.waitFor((f) => f.event === 'next', 'the refusal');
      expectDateError(dataOf<{ errors: Errors }>(frame).errors);
      await stream.waitEnd();
      expect(await t.s.app.store.lastSeq()).toBe(before);
      await expectHealthy(t.s);
    },
  );

  it.each([
    ['2024-02-29T12:00:00Z', '2024-02-29T12:00:00.000Z'],
    ['2000-02-29T23:59:59.999Z', '2000-02-29T23:59:59.999Z'],
    ['2024-02-29T01:30:00+05:30', '2024-02-28T20:00:00.000Z'],
    ['2024-03-01T00:15-01:00', '2024-03-01T01:15:00.000Z'],
    ['2026-12-31T23:59:59.123456Z', '2026-12-31T23:59:59.123Z'],
  ])('should publish and find the real date %s as %s', async (date, iso) => {
    const inbox = `dates-${crypto.randomUUID()}`;
    const res = await t.s.gql<{ publishEvent: { id: string; timestamp: string } }>(PUBLISH, {
      e: { type: 'd', inbox, timestamp: date },
    });
    expect(res.errors).toBeUndefined();
    expect(res.data?.publishEvent.timestamp).toBe(iso);
    const found = await t.s.gql<{ events: { nodes: { id: string }[] } }>(EVENTS, {
      f: { inboxes: [inbox], since: date, until: '9999-12-31T23:59:59Z' },
    });
    expect(found.data?.events.nodes.map((n) => n.id)).toEqual([res.data?.publishEvent.id]);
  });
});
