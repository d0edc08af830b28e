/**
 * Shared execution at the server level: streams with the same document, variables (less the one
 * carrying `after`) and visibility share one rendering per event and receive byte-identical
 * frames, equal to what a per-subscriber graphql-js execution gives; streams that must render
 * differently never share; and nothing is left behind once the streams close.
 *
 * Renders are counted through the store: every execution of a selection with `children` asks the
 * store for the children of its event once (a fresh DataLoader per execution), so the number of
 * `getChildren` calls naming an event is the number of times it was rendered.
 */
import { execute, parse, type ExecutionResult } from 'graphql';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { UNAUTHENTICATED_ADMIN } from '../../src/auth/principal.js';
import { createContext, type Services } from '../../src/context.js';
import { SEE_EVERYTHING, type StoredEvent, type Visibility } from '../../src/events/types.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import type { EventStore } from '../../src/store/types.js';
import {
  createOperationPreparer,
  type GraphQLParams,
  type StreamOperation,
} from '../../src/stream/operation.js';
import { tserver, tsubscribe, type TServer } from '../tserver.js';
import { rawPost, waitFor, type RawStream, type SseFrame } from './helpers.js';
import { byIds } from '../store/contract.js';

/** A real store that records the parent ids of every `getChildren` call. */
function countingStore(store: EventStore) {
  const childrenCalls: string[][] = [];
  const counted: EventStore = {
    ...store,
    getChildren: (parentIds, clauses) => {
      childrenCalls.push([...parentIds]);
      return store.getChildren(parentIds, clauses);
    },
  };
  return {
    store: counted,
    /** How many times the children of event `id` were asked for: its renders. */
    renders: (id: string) => childrenCalls.filter((ids) => ids.includes(id)).length,
  };
}

let s: TServer;
let counting: ReturnType<typeof countingStore>;
const open: RawStream[] = [];
beforeAll(async () => {
  counting = countingStore(createSqliteStore({ path: ':memory:' }));
  s = await tserver({}, { store: counting.store });
});
afterEach(async () => {
  for (const raw of open.splice(0)) raw.close();
  await waitFor(() => s.app.hub.size === 0 && s.app.sse.size === 0, 'every stream to close');
});
afterAll(() => s.stop());

const streamUrl = () => `${s.url}/graphql/stream`;

/** The services of the running app, as `buildApp` wires them. */
const services = (): Services => s.app.services;

/** Opens a raw distinct-connection stream and remembers it for cleanup. */
async function track(query: string, variables: Record<string, unknown>): Promise<RawStream> {
  const raw = await rawPost(streamUrl(), query, variables);
  open.push(raw);
  return raw;
}

/** The `next` frames of a raw stream. */
const nextFrames = (raw: RawStream): SseFrame[] => raw.frames.filter((f) => f.event === 'next');

/** Waits until every stream received a frame for each of `cursors`. */
async function received(raws: RawStream[], cursors: string[], what: string): Promise<void> {
  await waitFor(
    () => raws.every((raw) => cursors.every((c) => nextFrames(raw).some((f) => f.id === c))),
    what,
  );
}

/** A subscription document reading `$inboxes` from `$after`, selecting `selection`. */
function subscription(selection: string, options: { defs?: string; fragments?: string } = {}) {
  return `subscription Fan($inboxes: [String!], $after: String${options.defs ?? ''}) {
  eventStream(inboxes: $inboxes, after: $after) { ${selection} }
}
${options.fragments ?? ''}`;
}

/** What graphql-js gives for `query` on `event`, serialised as the server does. */
async function perSubscriber(
  query: string,
  event: StoredEvent,
  variableValues: Record<string, unknown>,
  visibility: Visibility = SEE_EVERYTHING,
): Promise<string> {
  const result: ExecutionResult = await execute({
    schema: s.app.schema,
    document: parse(query),
    rootValue: event,
    contextValue: createContext(services(), UNAUTHENTICATED_ADMIN, visibility),
    variableValues,
  });
  return JSON.stringify(result);
}

/** The events with these cursors, read back from the store. */
async function storedByCursor(events: StoredEvent[]): Promise<Map<string, StoredEvent>> {
  const fromStore = await byIds(
    s.app.store,
    events.map((e) => e.id),
  );
  const byCursor = new Map<string, StoredEvent>();
  for (const event of fromStore) if (event) byCursor.set(event.cursor, event);
  expect(byCursor.size).toBe(events.length);
  return byCursor;
}

/** Prepares `params` as a stream with a preparer whose callers have `visibility`. */
function prepareStream(
  visibility: Visibility,
  params: Partial<GraphQLParams> & { query: string },
  resumeAfter: string | null = null,
): StreamOperation {
  const preparer = createOperationPreparer({
    schema: s.app.schema,
    createContext: () => createContext(services(), UNAUTHENTICATED_ADMIN, visibility),
  });
  const prepared = preparer.prepare(
    { variables: null, operationName: null, extensions: null, ...params },
    'POST',
    resumeAfter,
    UNAUTHENTICATED_ADMIN,
  );
  if (prepared.kind !== 'stream') throw new Error(`not a stream: ${JSON.stringify(prepared)}`);
  return prepared;
}

const WHO = 'fragment Who on Event { actor source resource { type id } }';

/** Selections covering the ways a document can shape a result. */
const SELECTIONS: {
  name: string;
  query: string;
  variables?: Record<string, unknown>;
}[] = [
  {
    name: 'plain fields',
    query: subscription(
      'id cursor type inbox clientId severity category action message timestamp receivedAt parentId correlationId',
    ),
  },
  { name: 'aliases', query: subscription('key: id position: cursor kind: type level: severity') },
  { name: '__typename', query: subscription('__typename cursor') },
  {
    name: 'inline and named fragments',
    query: subscription('cursor ... on Event { type message } ...Who', { fragments: WHO }),
  },
  {
    name: '@include with variables',
    query: subscription('cursor body @include(if: $flag) message @skip(if: $flag)', {
      defs: ', $flag: Boolean!',
    }),
    variables: { flag: true },
  },
  {
    name: 'parent and children (DataLoader)',
    query: subscription('cursor type parent { id type } children { id }'),
  },
  { name: 'body JSON', query: subscription('cursor body') },
];

describe('shared execution', () => {
  it('should send byte-identical frames to every stream of a selection, equal to a per-subscriber graphql-js execution', async () => {
    const inbox = 'fanout-bytes';
    // A parent and its children are always published together, so the children a render sees
    // are those that exist when the test executes it again.
    const pre = await s.app.publish([
      { id: 'fan-pre-parent', type: 'pre.parent', inbox, body: { step: 0 } },
      {
        type: 'pre.child',
        inbox,
        parentId: 'fan-pre-parent',
        message: 'first child',
        actor: 'user/alice',
        source: 'runner',
        resource: { type: 'job', id: 'j-1' },
      },
      { type: 'pre.orphan', inbox, parentId: 'missing', body: [1, 'two', { three: null }] },
      { type: 'pre.text', inbox, message: 'héllo "quoted" \\ \n — ✓', severity: 'WARNING' },
      { type: 'pre.last', inbox, timestamp: '2026-01-31T12:00:00Z', correlationId: 'corr-1' },
    ]);
    // Different replays: 4, 3, 1 and 0 events, plus a stream without `after`.
    const afters = [undefined, pre[0]?.cursor, pre[1]?.cursor, pre[3]?.cursor, pre[4]?.cursor];
    const groups = await Promise.all(
      SELECTIONS.map(async (sel) => ({
        ...sel,
        streams: await Promise.all(
          afters.map(async (after) => {
            const variables = { ...sel.variables, inboxes: [inbox], ...(after ? { after } : {}) };
            return { after, variables, raw: await track(sel.query, variables) };
          }),
        ),
      })),
    );
    const all = groups.flatMap((g) => g.streams.map((st) => st.raw));
    await waitFor(() => s.app.hub.size === all.length, `${all.length} registered streams`);

    const live1 = await s.app.publish([
      { id: 'fan-live-parent', type: 'live.parent', inbox, body: { nested: { deep: [true] } } },
      { type: 'live.child', inbox, parentId: 'fan-live-parent', message: 'child one' },
      { type: 'live.child', inbox, parentId: 'fan-live-parent', severity: 'ERROR' },
    ]);
    // Once every stream has the first live batch, every stream is live.
    await received(
      all,
      live1.map((e) => e.cursor),
      'the first live batch',
    );
    const live2 = await s.app.publish([
      { id: 'fan-live-parent-2', type: 'live.parent.2', inbox, actor: 'user/bob' },
      { type: 'live.child.2', inbox, parentId: 'fan-live-parent-2', body: 'just a string' },
      { type: 'live.orphan', inbox, parentId: 'missing-too', body: { n: 1.5, e: -0 } },
    ]);
    await received(
      all,
      live2.map((e) => e.cursor),
      'the second live batch',
    );
    // The five streams of the relations selection rendered each live event once, together.
    for (const event of live2) expect(counting.renders(event.id)).toBe(1);

    const stored = await storedByCursor([...pre, ...live1, ...live2]);
    const liveCursors = [...live1, ...live2].map((e) => e.cursor);
    for (const group of groups) {
      const dataByCursor = new Map<string, Set<string>>();
      for (const { after, variables, raw } of group.streams) {
        const frames = nextFrames(raw);
        // Each stream got exactly its replay, then the live events, in order.
        const replayed = pre.filter((e) => after !== undefined && e.cursor > after);
        expect(
          frames.map((f) => f.id),
          group.name,
        ).toEqual([...replayed.map((e) => e.cursor), ...liveCursors]);
        for (const frame of frames) {
          const cursor = frame.id as string;
          const data = frame.data as string;
          dataByCursor.set(cursor, (dataByCursor.get(cursor) ?? new Set()).add(data));
          const expected = await perSubscriber(
            group.query,
            stored.get(cursor) as StoredEvent,
            variables,
          );
          expect(data, `${group.name}, event ${cursor}`).toBe(expected);
        }
      }
      for (const [cursor, datas] of dataByCursor) {
        expect([...datas], `${group.name}, event ${cursor}`).toHaveLength(1);
      }
      // Every live event went to all five streams.
      for (const cursor of liveCursors) expect(dataByCursor.has(cursor)).toBe(true);
    }
  });

  it('should share between streams that differ only in the variable carrying `after`, and not between streams whose variables change the result', async () => {
    const inbox = 'fanout-flag';
    const query = subscription(
      'cursor body @include(if: $flag) message @skip(if: $flag) children { id }',
      {
        defs: ', $flag: Boolean!',
      },
    );
    // Cursors of other inboxes: each stream replays nothing of its own inbox, from a different
    // `after`.
    const elsewhere = await s.app.publish(
      Array.from({ length: 3 }, (_, i) => ({ type: `elsewhere.${i}`, inbox: 'fanout-other' })),
    );
    const afters = [undefined, ...elsewhere.map((e) => e.cursor)];
    const streamsOf = (flag: boolean) =>
      Promise.all(
        afters.map(async (after) => {
          const variables = { flag, inboxes: [inbox], ...(after ? { after } : {}) };
          return { variables, raw: await track(query, variables) };
        }),
      );
    const yes = await streamsOf(true);
    const no = await streamsOf(false);
    const all = [...yes, ...no].map((st) => st.raw);
    await waitFor(() => s.app.hub.size === all.length, 'the streams');
    const [probe] = await s.app.publish([{ type: 'probe', inbox }]);
    await received(all, [probe?.cursor as string], 'the probe');

    const events = await s.app.publish([
      { type: 'flagged', inbox, body: { shown: 'when flag' }, message: 'shown without flag' },
      { type: 'flagged.2', inbox, body: [1, 2, 3], message: 'second' },
    ]);
    await received(
      all,
      events.map((e) => e.cursor),
      'the events',
    );
    // One render per distinct result: one for flag true, one for flag false.
    for (const event of events) expect(counting.renders(event.id)).toBe(2);

    const stored = await storedByCursor(events);
    for (const event of events) {
      const dataOf = (list: typeof yes) =>
        new Set(list.map((st) => nextFrames(st.raw).find((f) => f.id === event.cursor)?.data));
      const withFlag = dataOf(yes);
      const withoutFlag = dataOf(no);
      expect(withFlag.size).toBe(1);
      expect(withoutFlag.size).toBe(1);
      const [a] = withFlag;
      const [b] = withoutFlag;
      expect(a).not.toBe(b);
      const storedEvent = stored.get(event.cursor) as StoredEvent;
      expect(a).toBe(await perSubscriber(query, storedEvent, { flag: true, inboxes: [inbox] }));
      expect(b).toBe(await perSubscriber(query, storedEvent, { flag: false, inboxes: [inbox] }));
      expect(JSON.parse(a as string)).toHaveProperty('data.eventStream.body');
      expect(JSON.parse(b as string)).toHaveProperty('data.eventStream.message');
    }

    // The same, as group keys.
    const key = (variables: Record<string, unknown>, resumeAfter: string | null = null) =>
      prepareStream(SEE_EVERYTHING, { query, variables }, resumeAfter).groupKey;
    const base = { flag: true, inboxes: [inbox] };
    expect(key({ ...base, after: elsewhere[0]?.cursor })).toBe(key(base));
    expect(key({ ...base, after: elsewhere[1]?.cursor })).toBe(
      key({ ...base, after: elsewhere[2]?.cursor }),
    );
    expect(key(base, elsewhere[1]?.cursor ?? null)).toBe(key(base));
    expect(key({ inboxes: [inbox], flag: true })).toBe(key(base));
    expect(key({ ...base, flag: false })).not.toBe(key(base));
  });

  it('should key streams by visibility: different visibilities never share, equal ones do', () => {
    const query = subscription('cursor type body');
    const params = { query, variables: { inboxes: ['a'] } };
    const narrow: Visibility = { inboxes: ['a'], clients: null };
    const narrowKey = prepareStream(narrow, params).groupKey;
    const everythingKey = prepareStream(SEE_EVERYTHING, params).groupKey;
    expect(narrowKey).not.toBe(everythingKey);
    expect(prepareStream({ inboxes: ['a'], clients: 'client-1' }, params).groupKey).not.toBe(
      narrowKey,
    );
    expect(prepareStream({ inboxes: ['a', 'b'], clients: null }, params).groupKey).not.toBe(
      narrowKey,
    );
    // Equal visibilities, from other preparers and other objects, share.
    expect(prepareStream({ ...SEE_EVERYTHING }, params).groupKey).toBe(everythingKey);
    expect(prepareStream({ inboxes: ['a'], clients: null }, params).groupKey).toBe(narrowKey);
    expect(prepareStream({ clients: null, inboxes: ['a'] }, params).groupKey).toBe(narrowKey);
  });

  it('should leave no stream and no group behind once 50 streams of every kind close', async () => {
    const inbox = 'fanout-leak';
    // Ten groups: five documents, each with the flag on and off.
    const queries = Array.from({ length: 5 }, (_, i) =>
      subscription(`k${i}: cursor body @include(if: $flag) children { id }`, {
        defs: ', $flag: Boolean!',
      }),
    );
    const variants = queries.flatMap((query) =>
      [true, false].map((flag) => ({ query, variables: { flag, inboxes: [inbox] } })),
    );
    const variant = (i: number) => variants[i % variants.length] as (typeof variants)[number];
    const raws = await Promise.all(
      Array.from({ length: 20 }, (_, i) => track(variant(i).query, variant(i).variables)),
    );
    const distinctClient = s.client({ singleConnection: false });
    const singleClient = s.client({ singleConnection: true });
    const subs = [
      ...Array.from({ length: 20 }, (_, i) =>
        tsubscribe(distinctClient, variant(i).query, variant(i).variables),
      ),
      ...Array.from({ length: 10 }, (_, i) =>
        tsubscribe(singleClient, variant(i).query, variant(i).variables),
      ),
    ];
    await waitFor(() => s.app.hub.size === 50, '50 registered streams');
    const [before, last] = await s.app.publish([
      { type: 'leak.before', inbox },
      { type: 'leak.last', inbox, body: { last: true } },
    ]);
    await received(raws, [last?.cursor as string], 'the events on the raw streams');
    await Promise.all(subs.map((sub) => sub.next(2)));
    for (const sub of subs) expect(sub.results).toHaveLength(2);
    // One render per group.
    expect(counting.renders(last?.id as string)).toBe(variants.length);

    // Aborted requests, unsubscribed operations (DELETE in single connection mode), ...
    for (const raw of raws) raw.close();
    for (const sub of subs.slice(0, 25)) sub.unsubscribe();
    await waitFor(() => s.app.hub.size === 5, 'all but five streams to stop');
    expect(s.app.sse.size).toBe(1);
    // ... and operations that go with their single connection.
    distinctClient.dispose();
    singleClient.dispose();
    await waitFor(() => s.app.hub.size === 0, 'the hub to be empty');
    await waitFor(() => s.app.sse.size === 0, 'every connection to close');

    // A new stream of a former group renders the last event again: its group was removed, not
    // kept with the rendering cached.
    const again = await track(variant(0).query, { ...variant(0).variables, after: before?.cursor });
    await received([again], [last?.cursor as string], 'the replayed event');
    expect(counting.renders(last?.id as string)).toBe(variants.length + 1);
  });
});
