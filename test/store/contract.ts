/**
 * The contract every `EventStore` adapter must pass. An adapter's test file calls
 * {@link testEventStore} with a function that opens a fresh, empty store.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConflictError, StoreError } from '../../src/errors.js';
import { decodeCursor } from '../../src/events/cursor.js';
import { FIELD_LIST } from '../../src/events/fields.js';
import { compileFilter, MAX_FILTER_ITEMS_LIMIT } from '../../src/events/filter.js';
import type { Clause } from '../../src/events/filter.js';
import { SEE_EVERYTHING, SEVERITIES, type Severity } from '../../src/events/types.js';
import type { EventFilter, NewEvent, StoredEvent, Visibility } from '../../src/events/types.js';
import { validateEventInput } from '../../src/events/validate.js';
import type { PublishEventInput } from '../../src/events/validate.js';
import { requireCapability } from '../../src/store/index.js';
import type { EventOrder, EventStore, Page, StoreCapability } from '../../src/store/types.js';
import { teveryField } from '../tfields.js';

const T0 = Date.UTC(2026, 0, 1);

/** A validated event; `type` defaults to `test.event`. */
function ev(input: Partial<PublishEventInput> = {}): NewEvent {
  return validateEventInput({ type: 'test.event', ...input }, undefined, T0);
}

/** An event with every field the table of event fields declares set to an unusual value. */
function everyField(): NewEvent {
  return validateEventInput(teveryField(T0) as unknown as PublishEventInput, undefined, T0);
}

/** Events `e0 … e(n-1)`, with increasing timestamps. */
function series(
  n: number,
  extra: (i: number) => Partial<PublishEventInput> = () => ({}),
): NewEvent[] {
  return Array.from({ length: n }, (_, i) => ev({ id: `e${i}`, timestamp: T0 + i, ...extra(i) }));
}

const ids = (events: readonly (StoredEvent | null)[]): (string | null)[] =>
  events.map((e) => e?.id ?? null);

/**
 * The event with each id, null where there is none, for tests whose ids each live in one inbox
 * (it fails when an id names events in several).
 */
export async function byIds(
  store: EventStore,
  wanted: readonly string[],
): Promise<(StoredEvent | null)[]> {
  return (await store.getByIds(wanted, [])).map((group) => {
    expect(group.length).toBeLessThanOrEqual(1);
    return group[0] ?? null;
  });
}

/** Every optional capability of a store. */
const ALL_CAPABILITIES: readonly StoreCapability[] = ['retention', 'revocations'];

/** Options of {@link testEventStore}. */
export interface TestEventStoreOptions {
  /**
   * The optional capabilities the adapter has: the tests of the others are skipped, and a test
   * checks the opened store has exactly these.
   * @default every capability
   */
  capabilities?: readonly StoreCapability[];
}

/** Registers the contract suite for one adapter. `open` must return a fresh, empty store. */
export function testEventStore(
  name: string,
  open: () => Promise<EventStore>,
  options: TestEventStoreOptions = {},
): void {
  const has = new Set(options.capabilities ?? ALL_CAPABILITIES);
  describe(`EventStore contract: ${name}`, () => {
    let store: EventStore;
    const retention = () => requireCapability(store, 'retention', 'the retention tests');
    const revocations = () => requireCapability(store, 'revocations', 'the revocation tests');

    beforeEach(async () => {
      store = await open();
    });
    afterEach(async () => {
      await store.close();
    });

    /** Appends events and returns the stored ones. */
    async function seed(events: NewEvent[]): Promise<StoredEvent[]> {
      return (await store.append(events)).map((o) => o.event);
    }

    async function query(filter: EventFilter, visibility: Visibility = SEE_EVERYTHING) {
      const page = await store.page({
        clauses: compileFilter(filter, visibility),
        order: 'OLDEST_FIRST',
        first: 1000,
      });
      return page.events.map((e) => e.id);
    }

    describe('append', () => {
      it('should assign strictly increasing seq and matching cursors in append order', async () => {
        const first = await store.append(series(3));
        const second = await store.append([ev({ id: 'later' })]);
        const all = [...first, ...second];
        expect(all.every((o) => o.created)).toBe(true);
        const seqs = all.map((o) => o.event.seq);
        for (let i = 1; i < seqs.length; i++)
          expect(seqs[i]).toBeGreaterThan(seqs[i - 1] as number);
        for (const { event } of all) expect(decodeCursor(event.cursor)).toBe(event.seq);
        const cursors = all.map((o) => o.event.cursor);
        expect([...cursors].sort()).toEqual(cursors);
      });

      it('should store every field of the table of event fields and read each back', async () => {
        const input = everyField();
        const bare = ev();
        const fields = FIELD_LIST.map((f) => f.name).filter((name) => name !== 'fingerprint');
        // Every value differs from what a bare event gets, so a field a mapping drops shows.
        for (const name of fields) expect(input[name], name).not.toEqual(bare[name]);
        const { generatedId: _generated, ...expected } = input;
        const [appended] = await store.append([input]);
        const [byId] = await byIds(store, [input.id]);
        const replay = await store.readAfter(0, [], 10);
        const page = await store.page({ clauses: [], first: 10 });
        for (const read of [appended?.event, byId, replay.events[0], page.events[0]]) {
          expect(read).toMatchObject(expected);
          expect(Object.keys(read ?? {}).sort()).toEqual(
            [...Object.keys(expected), 'seq', 'cursor', 'receivedAt'].sort(),
          );
        }
        // The stored event is the same event: publishing it again creates nothing.
        const [again] = await store.append([everyField()]);
        expect(again?.created).toBe(false);
      });

      it('should store every field and give it back unchanged', async () => {
        const input = ev({
          id: 'full',
          type: 'vm.state.changed',
          inbox: 'ops',
          clientId: 'c1',
          message: 'VM started',
          body: { nested: { list: [1, 'two', null, true] }, n: 1.5 },
          severity: 'WARNING',
          category: 'lifecycle',
          action: 'start',
          resource: { type: 'vm', id: 'vm-42' },
          actor: 'alice',
          source: 'scheduler',
          parentId: 'root',
          correlationId: 'corr-1',
          timestamp: T0 + 123,
        });
        const before = Date.now();
        const [outcome] = await store.append([input]);
        expect(outcome?.created).toBe(true);
        const stored = outcome?.event as StoredEvent;
        expect(stored).toMatchObject({ ...input, seq: stored.seq, cursor: stored.cursor });
        expect(stored.receivedAt).toBeGreaterThanOrEqual(before);
        expect(stored.receivedAt).toBeLessThanOrEqual(Date.now());
        const [read] = await byIds(store, ['full']);
        expect(read).toEqual(stored);
      });

      it('should give back null for every optional field left out', async () => {
        const [stored] = await seed([ev({ id: 'bare' })]);
        const [read] = await byIds(store, ['bare']);
        for (const e of [stored, read]) {
          expect(e).toMatchObject({
            clientId: null,
            message: null,
            body: null,
            category: null,
            action: null,
            resource: null,
            actor: null,
            source: null,
            parentId: null,
            correlationId: null,
            inbox: 'global',
            severity: 'INFO',
          });
        }
      });

      it('should keep a scalar or array body as is', async () => {
        await seed([
          ev({ id: 's', body: 'text' }),
          ev({ id: 'a', body: [1, { b: 2 }] }),
          ev({ id: 'z', body: 0 }),
        ]);
        const read = await byIds(store, ['s', 'a', 'z']);
        expect(read.map((e) => e?.body)).toEqual(['text', [1, { b: 2 }], 0]);
      });

      it('should return an empty list for an empty batch', async () => {
        expect(await store.append([])).toEqual([]);
        expect(await store.lastSeq()).toBe(0);
      });

      it('should return the same event for a retried id without storing it twice', async () => {
        const [original] = await seed([ev({ id: 'retry', body: { a: 1, b: 2 } })]);
        const seqBefore = await store.lastSeq();
        const again = await store.append([ev({ id: 'retry', body: { b: 2, a: 1 } })]);
        expect(again).toEqual([{ event: original, created: false }]);
        expect(await store.lastSeq()).toBe(seqBefore);
        const page = await store.page({ clauses: [], order: 'OLDEST_FIRST', first: 10 });
        expect(page.events.map((e) => e.id)).toEqual(['retry']);
      });

      it('should mix retried and new events in one batch, creating only the new ones', async () => {
        const [a] = await seed([ev({ id: 'a' })]);
        const out = await store.append([ev({ id: 'b' }), ev({ id: 'a' }), ev({ id: 'c' })]);
        expect(out.map((o) => [o.event.id, o.created])).toEqual([
          ['b', true],
          ['a', false],
          ['c', true],
        ]);
        expect(out[1]?.event).toEqual(a);
      });

      it('should treat a repeated id inside one batch as a retry of the first', async () => {
        const out = await store.append([
          ev({ id: 'dup', message: 'm' }),
          ev({ id: 'dup', message: 'm' }),
        ]);
        expect(out.map((o) => o.created)).toEqual([true, false]);
        expect(out[1]?.event).toEqual(out[0]?.event);
        expect(await store.lastSeq()).toBe(out[0]?.event.seq);
      });

      it('should reject a reused id with different content with a ConflictError and store nothing of the batch', async () => {
        await seed([ev({ id: 'taken', message: 'original' })]);
        const seqBefore = await store.lastSeq();
        const attempt = store.append([
          ev({ id: 'fresh-1' }),
          ev({ id: 'taken', message: 'different' }),
          ev({ id: 'fresh-2' }),
        ]);
        await expect(attempt).rejects.toBeInstanceOf(ConflictError);
        await expect(attempt).rejects.toMatchObject({
          code: 'CONFLICT',
          details: { id: 'taken' },
          message: expect.stringContaining('"taken"'),
        });
        expect(await store.lastSeq()).toBe(seqBefore);
        expect(ids(await byIds(store, ['fresh-1', 'taken', 'fresh-2']))).toEqual([
          null,
          'taken',
          null,
        ]);
        const [kept] = await byIds(store, ['taken']);
        expect(kept?.message).toBe('original');
      });

      it('should reject a batch that repeats an id with different content, storing nothing', async () => {
        const attempt = store.append([
          ev({ id: 'x', message: 'one' }),
          ev({ id: 'y' }),
          ev({ id: 'x', message: 'two' }),
        ]);
        await expect(attempt).rejects.toBeInstanceOf(ConflictError);
        expect(await store.lastSeq()).toBe(0);
        expect(await byIds(store, ['x', 'y'])).toEqual([null, null]);
      });

      it('should keep working and number on after a failed batch or a retry', async () => {
        const [a] = await seed([ev({ id: 'a' })]);
        await expect(
          store.append([ev({ id: 'b' }), ev({ id: 'a', message: 'x' })]),
        ).rejects.toThrow(ConflictError);
        await store.append([ev({ id: 'a' })]);
        const [b] = await seed([ev({ id: 'b' })]);
        expect(b?.seq).toBeGreaterThan(a?.seq as number);
        expect(ids(await byIds(store, ['a', 'b']))).toEqual(['a', 'b']);
      });
    });

    describe('ids scoped to their inbox', () => {
      it('should store the same id in two inboxes as two events, each idempotent in its inbox', async () => {
        const [alice] = await seed([ev({ id: 'order-1002', inbox: 'alice', message: 'a' })]);
        // Another inbox, other content: a new event, not a conflict nor alice's event.
        const [bob] = await store.append([ev({ id: 'order-1002', inbox: 'bob', message: 'b' })]);
        expect(bob).toMatchObject({ created: true, event: { inbox: 'bob', message: 'b' } });
        expect(bob?.event.seq).toBeGreaterThan(alice?.seq as number);
        // Retries in each inbox give back that inbox's event.
        const retries = await store.append([
          ev({ id: 'order-1002', inbox: 'bob', message: 'b' }),
          ev({ id: 'order-1002', inbox: 'alice', message: 'a' }),
        ]);
        expect(retries).toEqual([
          { event: bob?.event, created: false },
          { event: alice, created: false },
        ]);
        // Other content in an inbox conflicts there, naming that inbox only.
        const attempt = store.append([ev({ id: 'order-1002', inbox: 'bob', message: 'x' })]);
        await expect(attempt).rejects.toBeInstanceOf(ConflictError);
        await expect(attempt).rejects.toMatchObject({
          details: { id: 'order-1002', inbox: 'bob' },
        });
        await expect(attempt).rejects.not.toThrow(/alice/);
        expect(await store.lastSeq()).toBe(bob?.event.seq);
      });

      it('should take one batch with the same id in several inboxes as several events', async () => {
        const out = await store.append([
          ev({ id: 'k', inbox: 'a', message: 'one' }),
          ev({ id: 'k', inbox: 'b', message: 'two' }),
          ev({ id: 'k', inbox: 'a', message: 'one' }),
        ]);
        expect(out.map((o) => [o.event.inbox, o.event.message, o.created])).toEqual([
          ['a', 'one', true],
          ['b', 'two', true],
          ['a', 'one', false],
        ]);
        expect(out[2]?.event).toEqual(out[0]?.event);
        expect(out[1]?.event.seq).toBe((out[0]?.event.seq as number) + 1);
      });

      it('should give back every event with an id, oldest first, within the clauses', async () => {
        const stored = await seed([
          ev({ id: 'k', inbox: 'b' }),
          ev({ id: 'other', inbox: 'a' }),
          ev({ id: 'k', inbox: 'a' }),
        ]);
        const inboxesOf = (groups: StoredEvent[][]) => groups.map((g) => g.map((e) => e.inbox));
        const all = await store.getByIds(['k', 'none', 'k'], []);
        expect(inboxesOf(all)).toEqual([['b', 'a'], [], ['b', 'a']]);
        expect(all[0]?.[0]).toEqual(stored[0]);
        const onlyA = compileFilter(null, { inboxes: ['a'], clients: 'all' });
        expect(inboxesOf(await store.getByIds(['k'], onlyA))).toEqual([['a']]);
        expect(await store.getByIds([], [])).toEqual([]);
      });
    });

    describe('getByIds', () => {
      it('should return events in the order asked, with null for unknown ids', async () => {
        await seed(series(5));
        const got = await byIds(store, ['e3', 'nope', 'e0', 'e3', 'e4']);
        expect(ids(got)).toEqual(['e3', null, 'e0', 'e3', 'e4']);
        expect(await byIds(store, [])).toEqual([]);
      });

      it('should find events among more ids than one query binds', async () => {
        await seed(series(3));
        const asked = [...Array.from({ length: 1200 }, (_, i) => `missing-${i}`), 'e2', 'e0'];
        const got = await byIds(store, asked);
        expect(got).toHaveLength(asked.length);
        expect(ids(got.slice(-2))).toEqual(['e2', 'e0']);
        expect(got.slice(0, -2).every((e) => e === null)).toBe(true);
      });
    });

    describe('getChildren', () => {
      it('should group children per parent, oldest first, in the order asked', async () => {
        await seed([
          ev({ id: 'p1' }),
          ev({ id: 'p2' }),
          ev({ id: 'c1a', parentId: 'p1' }),
          ev({ id: 'c2a', parentId: 'p2' }),
          ev({ id: 'c1b', parentId: 'p1' }),
          ev({ id: 'other', parentId: 'p3' }),
        ]);
        const groups = await store.getChildren(['p2', 'none', 'p1'], []);
        expect(groups.map((g) => g.map((e) => e.id))).toEqual([['c2a'], [], ['c1a', 'c1b']]);
        expect(await store.getChildren([], [])).toEqual([]);
      });

      it('should apply the clauses to the children', async () => {
        await seed([
          ev({ id: 'c1', parentId: 'p', severity: 'ERROR', inbox: 'a' }),
          ev({ id: 'c2', parentId: 'p', severity: 'INFO', inbox: 'a' }),
          ev({ id: 'c3', parentId: 'p', severity: 'ERROR', inbox: 'b' }),
          ev({ id: 'c4', parentId: 'q', severity: 'ERROR', inbox: 'a' }),
        ]);
        const clauses = compileFilter({ severities: ['ERROR'] }, { inboxes: ['a'], clients: null });
        const groups = await store.getChildren(['p', 'q'], clauses);
        expect(groups.map((g) => g.map((e) => e.id))).toEqual([['c1'], ['c4']]);
        const none = await store.getChildren(['p', 'q'], [{ kind: 'none' }]);
        expect(none).toEqual([[], []]);
      });

      it('should give each of repeated parent ids its own copy of the group', async () => {
        await seed([ev({ id: 'c', parentId: 'p' })]);
        const groups = await store.getChildren(['p', 'p'], []);
        expect(groups.map((g) => g.map((e) => e.id))).toEqual([['c'], ['c']]);
        expect(groups[0]).not.toBe(groups[1]);
      });
    });

    describe('page', () => {
      const N = 25;
      let stored: StoredEvent[];
      beforeEach(async () => {
        stored = await seed(series(N, (i) => ({ severity: i % 2 === 0 ? 'INFO' : 'ERROR' })));
      });
      const all = (order: EventOrder) => {
        const list = stored.map((e) => e.id);
        return order === 'NEWEST_FIRST' ? list.reverse() : list;
      };

      it('should list newest first with NEWEST_FIRST and 50 events when neither first nor last is given', async () => {
        await seed(series(40, (i) => ({ id: `more${i}` })));
        const page = await store.page({ clauses: [], order: 'NEWEST_FIRST' });
        expect(page.events).toHaveLength(50);
        expect(page.events[0]?.id).toBe('more39');
        const seqs = page.events.map((e) => e.seq);
        expect(seqs).toEqual([...seqs].sort((a, b) => b - a));
        expect(page.hasNextPage).toBe(true);
        expect(page.hasPreviousPage).toBe(false);
      });

      it('should list oldest first with OLDEST_FIRST', async () => {
        const page = await store.page({ clauses: [], order: 'OLDEST_FIRST', first: 100 });
        expect(page.events.map((e) => e.id)).toEqual(all('OLDEST_FIRST'));
        expect(page).toMatchObject({ hasNextPage: false, hasPreviousPage: false });
      });

      for (const order of ['NEWEST_FIRST', 'OLDEST_FIRST'] as const) {
        it(`should page forward with first/after through every event exactly once (${order})`, async () => {
          const seen: string[] = [];
          let after: number | null = null;
          const pages: Page[] = [];
          for (let guard = 0; guard < 10; guard++) {
            const page = await store.page({ clauses: [], order, first: 7, afterSeq: after });
            pages.push(page);
            seen.push(...page.events.map((e) => e.id));
            if (!page.hasNextPage) break;
            after = page.events.at(-1)?.seq ?? null;
          }
          expect(seen).toEqual(all(order));
          expect(pages.map((p) => p.events.length)).toEqual([7, 7, 7, 4]);
          expect(pages.map((p) => p.hasNextPage)).toEqual([true, true, true, false]);
          expect(pages.map((p) => p.hasPreviousPage)).toEqual([false, true, true, true]);
        });

        it(`should page backward with last/before through every event exactly once (${order})`, async () => {
          const seen: string[][] = [];
          let before: number | null = null;
          const pages: Page[] = [];
          for (let guard = 0; guard < 10; guard++) {
            const page = await store.page({ clauses: [], order, last: 7, beforeSeq: before });
            pages.push(page);
            seen.unshift(page.events.map((e) => e.id));
            if (!page.hasPreviousPage) break;
            before = page.events[0]?.seq ?? null;
          }
          expect(seen.flat()).toEqual(all(order));
          expect(pages.map((p) => p.events.length)).toEqual([7, 7, 7, 4]);
          expect(pages.map((p) => p.hasPreviousPage)).toEqual([true, true, true, false]);
          expect(pages.map((p) => p.hasNextPage)).toEqual([false, true, true, true]);
        });

        it(`should page within a filter, skipping events that do not match (${order})`, async () => {
          const clauses = compileFilter({ severities: ['ERROR'] }, SEE_EVERYTHING);
          const expected = all(order).filter((id) => Number(id.slice(1)) % 2 === 1);
          const seen: string[] = [];
          let after: number | null = null;
          for (let guard = 0; guard < 10; guard++) {
            const page = await store.page({ clauses, order, first: 5, afterSeq: after });
            seen.push(...page.events.map((e) => e.id));
            if (!page.hasNextPage) break;
            after = page.events.at(-1)?.seq ?? null;
          }
          expect(seen).toEqual(expected);
        });
      }

      it('should return the events between after and before when both are given', async () => {
        const s = (i: number) => stored[i]?.seq as number;
        const newest = await store.page({
          clauses: [],
          order: 'NEWEST_FIRST',
          first: 10,
          afterSeq: s(10),
          beforeSeq: s(5),
        });
        expect(newest.events.map((e) => e.id)).toEqual(['e9', 'e8', 'e7', 'e6']);
        expect(newest).toMatchObject({ hasNextPage: false, hasPreviousPage: true });
        const oldest = await store.page({
          clauses: [],
          order: 'OLDEST_FIRST',
          last: 2,
          afterSeq: s(5),
          beforeSeq: s(10),
        });
        expect(oldest.events.map((e) => e.id)).toEqual(['e8', 'e9']);
        expect(oldest).toMatchObject({ hasNextPage: true, hasPreviousPage: true });
      });

      it('should report hasNextPage exactly at the end of the list', async () => {
        const exact = await store.page({ clauses: [], order: 'OLDEST_FIRST', first: N });
        expect(exact).toMatchObject({ hasNextPage: false, hasPreviousPage: false });
        const oneShort = await store.page({ clauses: [], order: 'OLDEST_FIRST', first: N - 1 });
        expect(oneShort.hasNextPage).toBe(true);
        const lastOne = await store.page({
          clauses: [],
          order: 'OLDEST_FIRST',
          first: 5,
          afterSeq: stored[N - 2]?.seq,
        });
        expect(lastOne.events.map((e) => e.id)).toEqual([`e${N - 1}`]);
        expect(lastOne).toMatchObject({ hasNextPage: false, hasPreviousPage: true });
      });

      it('should report hasPreviousPage exactly at the start of the list', async () => {
        const exact = await store.page({ clauses: [], order: 'NEWEST_FIRST', last: N });
        expect(exact).toMatchObject({ hasNextPage: false, hasPreviousPage: false });
        const oneShort = await store.page({ clauses: [], order: 'NEWEST_FIRST', last: N - 1 });
        expect(oneShort.hasPreviousPage).toBe(true);
        expect(oneShort.events[0]?.id).toBe(`e${N - 2}`);
      });

      it('should count only matching events when deciding whether the other side has a page', async () => {
        // e24 is INFO; nothing newer than it exists, and every ERROR event is older.
        const infos = compileFilter({ severities: ['INFO'] }, SEE_EVERYTHING);
        const errors = compileFilter({ severities: ['ERROR'] }, SEE_EVERYTHING);
        const e23 = stored[23]?.seq as number;
        // OLDEST_FIRST after e23: the events before the bound are e0..e23.
        const afterE23 = await store.page({
          clauses: infos,
          order: 'OLDEST_FIRST',
          first: 5,
          afterSeq: e23,
        });
        expect(afterE23.events.map((e) => e.id)).toEqual(['e24']);
        expect(afterE23.hasPreviousPage).toBe(true);
        // NEWEST_FIRST after e24 with ERROR only: e24 itself is INFO, nothing newer matches.
        const e24 = stored[24]?.seq as number;
        const errorsAfter = await store.page({
          clauses: errors,
          order: 'NEWEST_FIRST',
          first: 2,
          afterSeq: e24,
        });
        expect(errorsAfter.events.map((e) => e.id)).toEqual(['e23', 'e21']);
        expect(errorsAfter.hasPreviousPage).toBe(false);
        // NEWEST_FIRST before e1 means newer than e1; e0 (INFO) lies on the far side of the bound.
        const e1 = stored[1]?.seq as number;
        const beforeE1 = await store.page({
          clauses: infos,
          order: 'NEWEST_FIRST',
          last: 3,
          beforeSeq: e1,
        });
        expect(beforeE1.events.map((e) => e.id)).toEqual(['e6', 'e4', 'e2']);
        expect(beforeE1).toMatchObject({ hasPreviousPage: true, hasNextPage: true });
        // Before e0 with ERROR only: e0 itself is INFO and nothing is older.
        const beforeE0 = await store.page({
          clauses: errors,
          order: 'NEWEST_FIRST',
          last: 3,
          beforeSeq: stored[0]?.seq,
        });
        expect(beforeE0.events.map((e) => e.id)).toEqual(['e5', 'e3', 'e1']);
        expect(beforeE0.hasNextPage).toBe(false);
      });

      it('should return an empty page with first 0 and say whether events exist', async () => {
        const page = await store.page({ clauses: [], order: 'NEWEST_FIRST', first: 0 });
        expect(page).toEqual({ events: [], hasNextPage: true, hasPreviousPage: false });
      });

      it('should return an empty page for a filter that matches nothing', async () => {
        const page = await store.page({
          clauses: [{ kind: 'none' }],
          order: 'NEWEST_FIRST',
          first: 10,
          afterSeq: 3,
        });
        expect(page).toEqual({ events: [], hasNextPage: false, hasPreviousPage: false });
      });
    });

    describe('readAfter', () => {
      it('should return matching events after a sequence, oldest first, up to the limit', async () => {
        const stored = await seed(series(10, (i) => ({ inbox: i % 3 === 0 ? 'x' : 'y' })));
        const clauses = compileFilter({ inboxes: ['y'] }, SEE_EVERYTHING);
        const got = (await store.readAfter(stored[2]?.seq as number, clauses, 4)).events;
        expect(got.map((e) => e.id)).toEqual(['e4', 'e5', 'e7', 'e8']);
        const rest = await store.readAfter(got.at(-1)?.seq as number, clauses, 100);
        expect(rest).toEqual({ events: [], purgedThrough: 0 });
        const fromStart = await store.readAfter(0, [], 3);
        expect(fromStart.events.map((e) => e.id)).toEqual(['e0', 'e1', 'e2']);
        expect(await store.readAfter(await store.lastSeq(), [], 10)).toEqual({
          events: [],
          purgedThrough: 0,
        });
      });
    });

    describe.skipIf(!has.has('retention'))('purge and the retention horizon', () => {
      /** Appends `events`, then waits until the clock has moved past their receipt time. */
      async function seedThenTick(events: NewEvent[]): Promise<StoredEvent[]> {
        const stored = await seed(events);
        const received = Math.max(...stored.map((e) => e.receivedAt));
        while (Date.now() <= received) await new Promise((r) => setTimeout(r, 1));
        return stored;
      }

      it('should remove the oldest events received before the cutoff, a batch at a time', async () => {
        const old = await seedThenTick(series(5));
        const cutoff = Date.now();
        const kept = await seed([ev({ id: 'new' })]);
        expect(await retention().purgedThrough()).toBe(0);

        expect(await retention().purge(cutoff, 3)).toEqual({
          deleted: 3,
          purgedThrough: old[2]?.seq,
        });
        expect(await retention().purge(cutoff, 3)).toEqual({
          deleted: 2,
          purgedThrough: old[4]?.seq,
        });
        expect(await retention().purge(cutoff, 3)).toEqual({
          deleted: 0,
          purgedThrough: old[4]?.seq,
        });
        expect(await retention().purgedThrough()).toBe(old[4]?.seq);
        expect(await query({})).toEqual(['new']);
        expect(ids(await byIds(store, ['e0', 'new']))).toEqual([null, 'new']);
        // The sequence goes on after the purged events; nothing is reused.
        expect(await store.lastSeq()).toBe(kept[0]?.seq);
        const [next] = await seed([ev({ id: 'next' })]);
        expect(next?.seq).toBeGreaterThan(kept[0]?.seq as number);
      });

      it('should read the horizon with every replay batch, and only events after it', async () => {
        const old = await seedThenTick(series(4, (i) => ({ inbox: i % 2 ? 'a' : 'b' })));
        const cutoff = Date.now();
        await seed([ev({ id: 'kept', inbox: 'a' })]);
        await retention().purge(cutoff, 100);
        const clauses = compileFilter({ inboxes: ['a'] }, SEE_EVERYTHING);
        const batch = await store.readAfter(0, clauses, 10);
        expect(batch.purgedThrough).toBe(old[3]?.seq);
        expect(batch.events.map((e) => e.id)).toEqual(['kept']);
      });

      it('should never remove an event received at or after the cutoff, nor any after it', async () => {
        const [first] = await seedThenTick([ev({ id: 'first' })]);
        const [second] = await seedThenTick([ev({ id: 'second' })]);
        await seed([ev({ id: 'third' })]);
        const result = await retention().purge(second?.receivedAt as number, 100);
        expect(result).toEqual({ deleted: 1, purgedThrough: first?.seq });
        expect(await query({})).toEqual(['second', 'third']);
      });

      it('should reject a negative or fractional limit and change nothing', async () => {
        await seedThenTick(series(2));
        await expect(retention().purge(Date.now(), -1)).rejects.toThrow(/limit/);
        await expect(retention().purge(Date.now(), 1.5)).rejects.toThrow(/limit/);
        expect(await query({})).toEqual(['e0', 'e1']);
      });
    });

    describe.skipIf(!has.has('revocations'))('revocations', () => {
      it('should record revoked tokens and subjects, keeping the latest time of a subject', async () => {
        expect(await revocations().lookup('jti-1', 'alice')).toEqual({
          token: null,
          subject: null,
        });
        await revocations().revoke({ kind: 'token', value: 'jti-1', at: 1_000 });
        await revocations().revoke({ kind: 'subject', value: 'alice', at: 2_000 });
        await revocations().revoke({ kind: 'subject', value: 'alice', at: 1_500 });
        expect(await revocations().lookup('jti-1', 'alice')).toEqual({
          token: 1_000,
          subject: 2_000,
        });
        await revocations().revoke({ kind: 'subject', value: 'alice', at: 3_000 });
        expect(await revocations().lookup(null, 'alice')).toEqual({ token: null, subject: 3_000 });
        // A token id and a subject with the same text are different things.
        expect(await revocations().lookup('alice', 'jti-1')).toEqual({
          token: null,
          subject: null,
        });
      });
    });

    describe('capabilities', () => {
      it('should have exactly the optional capabilities the suite was told of', () => {
        const present = ALL_CAPABILITIES.filter((c) => store[c] !== undefined);
        expect(present).toEqual(ALL_CAPABILITIES.filter((c) => has.has(c)));
      });

      it.skipIf(has.has('retention'))(
        'should answer a horizon of 0 with every replay when it has no retention',
        async () => {
          await seed(series(2));
          expect((await store.readAfter(0, [], 10)).purgedThrough).toBe(0);
        },
      );
    });

    describe('lastSeq', () => {
      it('should be 0 when empty and the highest committed sequence after appends', async () => {
        expect(await store.lastSeq()).toBe(0);
        const stored = await seed(series(4));
        expect(await store.lastSeq()).toBe(stored.at(-1)?.seq);
        await store.append([series(4)[1] as NewEvent]);
        expect(await store.lastSeq()).toBe(stored.at(-1)?.seq);
        await expect(
          store.append([ev({ id: 'new' }), ev({ id: 'e1', message: 'x' })]),
        ).rejects.toThrow();
        expect(await store.lastSeq()).toBe(stored.at(-1)?.seq);
      });
    });

    describe('filters', () => {
      const T = (m: number) => T0 + m * 60_000;
      beforeEach(async () => {
        await seed([
          ev({
            id: 'a',
            type: 'vm.started',
            inbox: 'ops',
            severity: 'INFO',
            category: 'lifecycle',
            action: 'start',
            resource: { type: 'vm', id: 'vm-1' },
            actor: 'alice',
            source: 'sched',
            correlationId: 'c1',
            timestamp: T(0),
          }),
          ev({
            id: 'b',
            type: 'vm.stopped',
            inbox: 'ops',
            severity: 'WARNING',
            category: 'lifecycle',
            action: 'stop',
            resource: { type: 'vm', id: 'vm-2' },
            actor: 'bob',
            source: 'sched',
            correlationId: 'c1',
            parentId: 'a',
            timestamp: T(1),
          }),
          ev({
            id: 'c',
            type: 'vm2.created',
            inbox: 'dev',
            severity: 'ERROR',
            category: 'billing',
            action: 'start',
            resource: { type: 'vmx', id: 'vm-1' },
            actor: 'alice',
            source: 'api',
            correlationId: 'c2',
            timestamp: T(2),
          }),
          ev({
            id: 'd',
            type: 'VM.started',
            inbox: 'dev-team',
            severity: 'CRITICAL',
            resource: { type: 'nuvlabox', id: 'nb-1' },
            source: 'api',
            parentId: 'a',
            timestamp: T(3),
          }),
          ev({
            id: 'e',
            type: 'vm',
            inbox: 'global',
            severity: 'DEBUG',
            category: 'Lifecycle',
            timestamp: T(4),
          }),
          ev({
            id: 'f',
            type: 'user.login',
            inbox: 'ops',
            severity: 'SUCCESS',
            actor: 'carol',
            clientId: 'cx',
            timestamp: T(5),
          }),
          ev({
            id: 'g',
            type: 'user.logout',
            inbox: 'dev',
            severity: 'INFO',
            clientId: 'cy',
            timestamp: T(6),
          }),
        ]);
      });

      const cases: [string, EventFilter, string[]][] = [
        ['no filter', {}, ['a', 'b', 'c', 'd', 'e', 'f', 'g']],
        ['inboxes exact', { inboxes: ['ops', 'global'] }, ['a', 'b', 'e', 'f']],
        ['inboxes prefix', { inboxes: ['dev*'] }, ['c', 'd', 'g']],
        ['inboxes empty list', { inboxes: [] }, []],
        ['inboxes lone *', { inboxes: ['*'] }, ['a', 'b', 'c', 'd', 'e', 'f', 'g']],
        ['types exact', { types: ['vm.started', 'vm'] }, ['a', 'e']],
        ['types prefix vm.*', { types: ['vm.*'] }, ['a', 'b']],
        ['types prefix vm*', { types: ['vm*'] }, ['a', 'b', 'c', 'e']],
        ['types prefix and exact', { types: ['user.*', 'vm'] }, ['e', 'f', 'g']],
        ['types prefix is case-sensitive', { types: ['VM.*'] }, ['d']],
        ['severities', { severities: ['ERROR', 'CRITICAL'] }, ['c', 'd']],
        ['categories', { categories: ['lifecycle'] }, ['a', 'b']],
        ['categories case-sensitive', { categories: ['Lifecycle'] }, ['e']],
        ['actions', { actions: ['start'] }, ['a', 'c']],
        ['resourceType', { resourceType: 'vm' }, ['a', 'b']],
        ['resourceId', { resourceId: 'vm-1' }, ['a', 'c']],
        ['resourceType and resourceId', { resourceType: 'vm', resourceId: 'vm-1' }, ['a']],
        ['actor', { actor: 'alice' }, ['a', 'c']],
        ['source', { source: 'api' }, ['c', 'd']],
        ['correlationId', { correlationId: 'c1' }, ['a', 'b']],
        ['parentId', { parentId: 'a' }, ['b', 'd']],
        ['since (inclusive)', { since: T(5) }, ['f', 'g']],
        ['until (exclusive)', { until: T(2) }, ['a', 'b']],
        ['since and until', { since: T(2), until: T(4) }, ['c', 'd']],
        ['fields combine with AND', { inboxes: ['ops'], actor: 'alice' }, ['a']],
      ];
      for (const [what, filter, expected] of cases) {
        it(`should return exactly the matching events for ${what}`, async () => {
          expect(await query(filter)).toEqual(expected);
        });
      }

      const visibilities: [string, Visibility, string[]][] = [
        ['inbox names', { inboxes: ['ops'], clients: 'all' }, ['a', 'b', 'f']],
        ['inbox patterns', { inboxes: ['dev*', 'global'], clients: 'all' }, ['c', 'd', 'e', 'g']],
        ['no inboxes', { inboxes: [], clients: 'all' }, []],
        [
          'broadcast events only (clients null)',
          { inboxes: null, clients: null },
          ['a', 'b', 'c', 'd', 'e'],
        ],
        [
          "broadcast plus the client's own (clients 'cx')",
          { inboxes: null, clients: 'cx' },
          ['a', 'b', 'c', 'd', 'e', 'f'],
        ],
        [
          "every event (clients 'all')",
          { inboxes: null, clients: 'all' },
          ['a', 'b', 'c', 'd', 'e', 'f', 'g'],
        ],
      ];
      for (const [what, visibility, expected] of visibilities) {
        it(`should only return what the visibility allows: ${what}`, async () => {
          expect(await query({}, visibility)).toEqual(expected);
        });
      }

      it('should answer a filter and a stream with every list at the largest TIDINGS_MAX_FILTER_ITEMS', async () => {
        const n = MAX_FILTER_ITEMS_LIMIT;
        /** `n` entries ending with `last`: prefixes and names that match nothing before them. */
        const padded = (...last: string[]) => [
          ...Array.from({ length: n - last.length }, (_, i) => (i % 2 ? `no${i}*` : `no${i}`)),
          ...last,
        ];
        const filter: EventFilter = {
          inboxes: padded('dev*', 'ops'),
          types: padded('vm*', 'user.login'),
          severities: Array.from({ length: n }, (_, i) => SEVERITIES[i % 6] as Severity),
          categories: padded('lifecycle', 'billing'),
          actions: padded('start', 'stop'),
        };
        expect(await query(filter)).toEqual(['a', 'b', 'c']);
        // A stream adds its own inboxes (as many again) to the filter's, and its client.
        const stream = [
          ...compileFilter(filter, { inboxes: padded('ops'), clients: null }),
          ...compileFilter(null, { inboxes: padded('o*'), clients: 'all' }),
        ];
        const replay = await store.readAfter(0, stream, 100);
        expect(replay.events.map((e) => e.id)).toEqual(['a', 'b']);
      });

      it('should apply the visibility on top of the filter', async () => {
        expect(await query({ inboxes: ['dev*'] }, { inboxes: ['dev'], clients: null })).toEqual([
          'c',
        ]);
        expect(await query({ inboxes: ['ops'] }, { inboxes: ['dev*'], clients: 'all' })).toEqual(
          [],
        );
      });
    });

    describe('prefixes with wildcard characters', () => {
      beforeEach(async () => {
        const categories = ['a*b', 'a?c', 'a[x]', 'a%d', 'a_e', 'abc', 'ABC', 'a]f', 'a^g', 'a\\h'];
        await seed(categories.map((category, i) => ev({ id: `k${i}`, category })));
        await seed([
          ev({ id: 'in1', inbox: 'team_a' }),
          ev({ id: 'in2', inbox: 'teamXa' }),
          ev({ id: 'in3', inbox: 'TEAM_a' }),
        ]);
      });
      const cat = async (pattern: string) => {
        const found = await query({ categories: [pattern] });
        const got = await byIds(store, found);
        return got.map((e) => e?.category);
      };

      it('should treat * ? [ ] % _ ^ \\ in a prefix as plain characters', async () => {
        expect(await cat('a**')).toEqual(['a*b']);
        expect(await cat('a?*')).toEqual(['a?c']);
        expect(await cat('a[*')).toEqual(['a[x]']);
        expect(await cat('a[x*')).toEqual(['a[x]']);
        expect(await cat('a]*')).toEqual(['a]f']);
        expect(await cat('a%*')).toEqual(['a%d']);
        expect(await cat('a_*')).toEqual(['a_e']);
        expect(await cat('a^*')).toEqual(['a^g']);
        expect(await cat('a\\*')).toEqual(['a\\h']);
      });

      it('should match a prefix case-sensitively', async () => {
        expect(await cat('ab*')).toEqual(['abc']);
        expect(await cat('AB*')).toEqual(['ABC']);
        expect(await cat('Ab*')).toEqual([]);
        expect(await query({ inboxes: ['team_*'] })).toEqual(['in1']);
        expect(await query({ inboxes: ['team*'] })).toEqual(['in1', 'in2']);
      });
    });

    describe('lifecycle', () => {
      it('should answer ping while open', async () => {
        await expect(store.ping()).resolves.toBeUndefined();
      });

      it('should reject every call with a StoreError after close, and close twice without error', async () => {
        await store.close();
        await expect(store.close()).resolves.toBeUndefined();
        const clauses: Clause[] = [];
        const calls: (() => Promise<unknown>)[] = [
          () => store.ping(),
          () => store.append([ev()]),
          () => store.getByIds(['x'], clauses),
          () => store.getChildren(['x'], clauses),
          () => store.page({ clauses, order: 'NEWEST_FIRST', first: 1 }),
          () => store.readAfter(0, clauses, 1),
          () => store.lastSeq(),
        ];
        for (const call of calls) {
          await expect(call()).rejects.toBeInstanceOf(StoreError);
          await expect(call()).rejects.toMatchObject({
            code: 'STORE_ERROR',
            message: expect.stringMatching(/closed/),
          });
        }
      });
    });
  });
}
