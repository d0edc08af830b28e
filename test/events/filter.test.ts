import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CursorError, ValidationError } from '../../src/errors.js';
import { decodeCursor, encodeCursor } from '../../src/events/cursor.js';
import {
  checkFilterLists,
  compileFilter,
  matchesClauses,
  type Clause,
} from '../../src/events/filter.js';
import {
  SEE_EVERYTHING,
  SEVERITIES,
  type EventFilter,
  type NewEvent,
  type ResourceRef,
  type StoredEvent,
  type Visibility,
} from '../../src/events/types.js';
import { validateEventInput, type PublishEventInput } from '../../src/events/validate.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import type { EventStore } from '../../src/store/types.js';
import { random } from '../trandom.js';

const T0 = Date.UTC(2026, 0, 1);

const POOLS = {
  type: [
    'vm.state',
    'vm.state.changed',
    'vm',
    'vm.',
    'vm2',
    'vm2.created',
    'VM.x',
    'Vm.state',
    'user.login',
    'user_logout',
    'a:b',
    'a-b',
  ],
  inbox: ['global', 'ops', 'ops-eu', 'ops_eu', 'opsXeu', 'OPS', 'dev', 'dev.team'],
  clientId: [null, null, null, 'c1', 'c2', 'C1', 'c1x'],
  category: [
    null,
    'lifecycle',
    'Lifecycle',
    'life',
    'a*b',
    'a?c',
    'a[x]',
    'a%d',
    'a_e',
    'abc',
    'écho',
    'echo',
  ],
  action: [null, 'start', 'stop', 'Start', 'st%', 'st_p'],
  resourceType: ['vm', 'vmx', 'VM', 'nuvlabox'],
  resourceId: ['vm-1', 'vm-2', 'nb-1'],
  actor: [null, 'alice', 'Alice', 'bob'],
  source: [null, 'api', 'sched'],
  parentId: [null, null, 'p1', 'p2'],
  correlationId: [null, 'c-1', 'c-2'],
} as const;

describe('filter: in-memory matching and SQL agree', () => {
  const rand = random(20260101);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;
  const chance = (p: number) => rand() < p;

  let store: EventStore;
  let stored: StoredEvent[];

  beforeAll(async () => {
    const inputs: PublishEventInput[] = Array.from({ length: 300 }, (_, i) => {
      const resource: ResourceRef | null = chance(0.6)
        ? { type: pick(POOLS.resourceType), id: pick(POOLS.resourceId) }
        : null;
      return {
        id: `ev-${i}`,
        type: pick(POOLS.type),
        inbox: chance(0.15) ? null : pick(POOLS.inbox),
        clientId: pick(POOLS.clientId),
        severity: chance(0.1) ? null : pick(SEVERITIES),
        category: pick(POOLS.category),
        action: pick(POOLS.action),
        resource,
        actor: pick(POOLS.actor),
        source: pick(POOLS.source),
        parentId: pick(POOLS.parentId),
        correlationId: pick(POOLS.correlationId),
        timestamp: T0 + Math.floor(rand() * 1000) * 1000,
        body: chance(0.5) ? { i } : null,
      };
    });
    const events: NewEvent[] = inputs.map((input) => validateEventInput(input, undefined, T0));
    store = createSqliteStore({ path: ':memory:' });
    stored = (await store.append(events)).map((o) => o.event);
  });
  afterAll(async () => {
    await store.close();
  });

  /** Patterns for a list filter: exact values, prefixes cut from values, sometimes `*`. */
  function patterns(values: readonly (string | null)[]): string[] {
    if (chance(0.05)) return [];
    if (chance(0.05)) return ['*'];
    const n = 1 + Math.floor(rand() * 3);
    return Array.from({ length: n }, () => {
      const value = pick(values.filter((v): v is string => v !== null));
      if (chance(0.5)) return value;
      const cut = value.slice(0, Math.floor(rand() * (value.length + 1)));
      return `${chance(0.15) ? cut.toUpperCase() : cut}*`;
    });
  }
  const single = (values: readonly (string | null)[]) =>
    pick([...values.filter((v): v is string => v !== null), 'unknown']);

  function randomFilter(): EventFilter {
    const f: EventFilter = {};
    if (chance(0.3)) f.inboxes = patterns(POOLS.inbox);
    if (chance(0.4)) f.types = patterns(POOLS.type);
    if (chance(0.2)) {
      f.severities = SEVERITIES.filter(() => chance(0.4));
    }
    if (chance(0.3)) f.categories = patterns(POOLS.category);
    if (chance(0.2)) f.actions = patterns(POOLS.action);
    if (chance(0.15)) f.resourceType = single(POOLS.resourceType);
    if (chance(0.15)) f.resourceId = single(POOLS.resourceId);
    if (chance(0.15)) f.actor = single(POOLS.actor);
    if (chance(0.1)) f.source = single(POOLS.source);
    if (chance(0.1)) f.correlationId = single(POOLS.correlationId);
    if (chance(0.1)) f.parentId = single(POOLS.parentId);
    if (chance(0.2)) f.since = T0 + Math.floor(rand() * 1000) * 1000;
    if (chance(0.2)) f.until = T0 + Math.floor(rand() * 1000) * 1000;
    return f;
  }

  function randomVisibility(): Visibility {
    return {
      inboxes: chance(0.5) ? null : patterns(POOLS.inbox),
      clients: pick(['all', null, 'c1', 'C1', 'c2'] as const),
    };
  }

  it('should return from the store exactly the events the in-memory matcher accepts, for 200 filters', async () => {
    let nonTrivial = 0;
    for (let n = 0; n < 200; n++) {
      const filter = randomFilter();
      const visibility = randomVisibility();
      const clauses = compileFilter(filter, visibility);
      const expected = stored.filter((e) => matchesClauses(e, clauses)).map((e) => e.id);
      const page = await store.page({ clauses, order: 'OLDEST_FIRST', first: 1000 });
      expect(
        page.events.map((e) => e.id),
        JSON.stringify({ filter, visibility }),
      ).toEqual(expected);
      if (expected.length > 0 && expected.length < stored.length) nonTrivial++;
    }
    // The generator must exercise the interesting middle, not only "all" and "nothing".
    expect(nonTrivial).toBeGreaterThan(100);
  });

  it('should agree in readAfter and newest-first pages too', async () => {
    for (let n = 0; n < 50; n++) {
      const clauses = compileFilter(randomFilter(), randomVisibility());
      const from = stored[Math.floor(rand() * stored.length)]?.seq as number;
      const expected = stored.filter((e) => e.seq > from && matchesClauses(e, clauses));
      const replay = await store.readAfter(from, clauses, 1000);
      expect(replay.events.map((e) => e.id)).toEqual(expected.map((e) => e.id));
      const page = await store.page({ clauses, order: 'NEWEST_FIRST', first: 1000 });
      const all = stored.filter((e) => matchesClauses(e, clauses)).reverse();
      expect(page.events.map((e) => e.id)).toEqual(all.map((e) => e.id));
    }
  });

  it('should agree on the children of each parent', async () => {
    for (let n = 0; n < 30; n++) {
      const clauses = compileFilter(randomFilter(), randomVisibility());
      const groups = await store.getChildren(['p2', 'p1', 'none'], clauses);
      const expected = ['p2', 'p1', 'none'].map((p) =>
        stored.filter((e) => e.parentId === p && matchesClauses(e, clauses)).map((e) => e.id),
      );
      expect(groups.map((g) => g.map((e) => e.id))).toEqual(expected);
    }
  });
});

describe('compileFilter', () => {
  const event = validateEventInput({ type: 'vm.started', inbox: 'ops', clientId: 'c1' });

  it('should compile an empty filter with full visibility to no clauses', () => {
    expect(compileFilter(null, SEE_EVERYTHING)).toEqual([]);
    expect(compileFilter({ types: ['*'] }, SEE_EVERYTHING)).toEqual([]);
  });

  it('should compile an empty list to a clause that matches nothing', () => {
    const clauses = compileFilter({ types: ['vm.*'], inboxes: [] }, SEE_EVERYTHING);
    expect(clauses).toEqual([{ kind: 'none' }]);
    expect(matchesClauses(event, clauses)).toBe(false);
  });

  it('should hide targeted events from a reader who is neither their client nor an admin', () => {
    const see = (clients: Visibility['clients']) =>
      matchesClauses(event, compileFilter({}, { inboxes: null, clients }));
    expect([see(null), see('c2'), see('c1'), see('all')]).toEqual([false, false, true, true]);
  });

  it('should refuse a list longer than the limit, naming it, the limit and the setting', () => {
    const types = ['a', 'b*', 'c'];
    expect(() => checkFilterLists({ types, categories: null }, 3, 'filter.')).not.toThrow();
    expect(() => checkFilterLists(null, 3)).not.toThrow();
    const attempt = () => checkFilterLists({ resourceType: 'vm', inboxes: [...types, 'd'] }, 3);
    expect(attempt).toThrow(ValidationError);
    expect(attempt).toThrow(
      '[filter] inboxes has 4 entries, over the limit of 3 (TIDINGS_MAX_FILTER_ITEMS)',
    );
    try {
      checkFilterLists({ severities: ['INFO', 'INFO'] }, 1, 'filter.');
    } catch (err) {
      expect(err).toMatchObject({
        code: 'BAD_USER_INPUT',
        details: { field: 'filter.severities', limit: 1 },
      });
    }
    expect.assertions(5);
  });

  it('should split patterns into exact values and prefixes', () => {
    const clauses: Clause[] = compileFilter({ types: ['a', 'vm.*'] }, SEE_EVERYTHING);
    expect(clauses).toEqual([{ kind: 'match', field: 'type', values: ['a'], prefixes: ['vm.'] }]);
  });
});

describe('cursor', () => {
  it('should decode what it encodes', () => {
    for (const seq of [0, 1, 35, 36, 1295, 1296, 123_456_789, 2 ** 40, Number.MAX_SAFE_INTEGER]) {
      const cursor = encodeCursor(seq);
      expect(cursor).toMatch(/^[0-9a-z]{12}$/);
      expect(decodeCursor(cursor)).toBe(seq);
    }
  });

  it('should order cursors as strings exactly as their sequences order as numbers', () => {
    const rand = random(7);
    for (let n = 0; n < 1000; n++) {
      const a = Math.floor(rand() * 2 ** (1 + Math.floor(rand() * 52)));
      const b = Math.floor(rand() * 2 ** (1 + Math.floor(rand() * 52)));
      const [ca, cb] = [encodeCursor(a), encodeCursor(b)];
      expect(Math.sign(ca < cb ? -1 : ca > cb ? 1 : 0)).toBe(Math.sign(a - b));
    }
  });

  it.each([
    '',
    'abc',
    '0000000000001',
    'ABCDEFGHIJKL',
    '00000000000!',
    ' 00000000001',
    'zzzzzzzzzzzz',
  ])('should reject the malformed cursor "%s" with a CursorError', (cursor) => {
    expect(() => decodeCursor(cursor)).toThrow(CursorError);
  });

  it('should refuse to encode a sequence that is negative or not a safe integer', () => {
    for (const seq of [-1, 1.5, Number.NaN, 2 ** 53])
      expect(() => encodeCursor(seq)).toThrow(RangeError);
  });
});

describe('validateEventInput', () => {
  const NOW = Date.UTC(2026, 5, 1);

  function rejects(
    input: unknown,
    field: string,
    limits?: { maxBodyBytes: number },
  ): ValidationError {
    let error: unknown;
    try {
      validateEventInput(input as PublishEventInput, limits, NOW);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ValidationError);
    const v = error as ValidationError;
    expect(v.code).toBe('BAD_USER_INPUT');
    expect(v.details.field).toBe(field);
    expect(v.message).toContain(field);
    return v;
  }

  it('should fill in the defaults: a UUIDv7 id, the global inbox, INFO, now, and nulls', () => {
    const e = validateEventInput({ type: 'vm.started' }, undefined, NOW);
    expect(e.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(e).toMatchObject({
      type: 'vm.started',
      inbox: 'global',
      severity: 'INFO',
      timestamp: NOW,
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
    });
    expect(validateEventInput({ type: 'a' }).id).not.toBe(validateEventInput({ type: 'a' }).id);
  });

  it('should accept a timestamp as a Date, an ISO string or epoch milliseconds', () => {
    const ms = Date.UTC(2026, 0, 31, 12);
    for (const timestamp of [new Date(ms), '2026-01-31T12:00:00Z', ms]) {
      expect(validateEventInput({ type: 'a', timestamp }).timestamp).toBe(ms);
    }
  });

  it.each([
    ['2020-02-30T00:00:00Z', 'day 30 does not exist: February 2020 has 29 days'],
    ['2026-01-01T24:00:00Z', 'hour 24 does not exist'],
    ['2026-01-01T23:60:00Z', 'minute 60 does not exist'],
    ['2026-13-01T00:00:00Z', 'month 13 does not exist'],
    ['2026-01-00T00:00:00Z', 'day 00 does not exist'],
    ['March 1 2020', 'it is not an ISO 8601 date-time with a time zone'],
  ])('should reject the timestamp %s, saying why', (timestamp, why) => {
    const attempt = () => validateEventInput({ type: 'a', timestamp });
    expect(attempt).toThrow(ValidationError);
    expect(attempt).toThrow(`[events] timestamp is not a valid date (${why}`);
  });

  it('should accept a leap day and an offset', () => {
    expect(
      validateEventInput({ type: 'a', timestamp: '2024-02-29T23:30:00-01:00' }).timestamp,
    ).toBe(Date.UTC(2024, 2, 1, 0, 30));
  });

  it('should reject an empty type', () => {
    rejects({ type: '' }, 'type');
  });

  it('should reject a type of 129 characters and accept one of 128', () => {
    rejects({ type: 'a'.repeat(129) }, 'type');
    expect(validateEventInput({ type: 'a'.repeat(128) }).type).toHaveLength(128);
  });

  it.each(['vm state', 'vm/started', 'vm*', 'été'])(
    'should reject the type "%s" with characters outside [A-Za-z0-9_.:-]',
    (type) => {
      rejects({ type }, 'type');
    },
  );

  it('should reject a bad id or inbox name', () => {
    rejects({ type: 'a', id: 'has space' }, 'id');
    rejects({ type: 'a', inbox: 'a/b' }, 'inbox');
  });

  it('should reject a missing type', () => {
    rejects({}, 'type');
  });

  it('should reject an unknown field, naming it', () => {
    const err = rejects({ type: 'a', colour: 'red' }, '(input)');
    expect(err.message).toContain('colour');
  });

  it('should reject an unknown field inside resource', () => {
    rejects({ type: 'a', resource: { type: 'vm', id: '1', extra: 1 } }, 'resource');
  });

  it('should reject an unknown severity', () => {
    rejects({ type: 'a', severity: 'FATAL' }, 'severity');
  });

  it('should reject a body over the limit and accept one at the limit', () => {
    const body = { s: 'x'.repeat(100) };
    const size = Buffer.byteLength(JSON.stringify(body));
    const err = rejects({ type: 'a', body }, 'body', { maxBodyBytes: size - 1 });
    expect(err.details.limit).toBe(size - 1);
    expect(validateEventInput({ type: 'a', body }, { maxBodyBytes: size }).body).toEqual(body);
  });

  it('should reject a body that is not JSON-serialisable', () => {
    const body: Record<string, unknown> = {};
    body.self = body;
    rejects({ type: 'a', body }, 'body');
  });

  it.each(['yesterday', '2026-13-45', Number.NaN, Number.POSITIVE_INFINITY])(
    'should reject the timestamp %s',
    (timestamp) => {
      rejects({ type: 'a', timestamp }, 'timestamp');
    },
  );

  it('should reject control characters in text and empty labels', () => {
    rejects({ type: 'a', message: 'bell\u0007' }, 'message');
    rejects({ type: 'a', category: '' }, 'category');
    expect(validateEventInput({ type: 'a', message: 'tab\tand\nnewline' }).message).toBe(
      'tab\tand\nnewline',
    );
  });

  it('should give the same fingerprint for the same content in any key order, whatever the id', () => {
    const a = validateEventInput({
      id: 'one',
      type: 'vm.started',
      severity: 'ERROR',
      resource: { type: 'vm', id: '1' },
      body: { b: [1, { y: 2, x: 1 }], a: 'z' },
    });
    const b = validateEventInput({
      body: { a: 'z', b: [1, { x: 1, y: 2 }] },
      resource: { id: '1', type: 'vm' },
      severity: 'ERROR',
      type: 'vm.started',
      id: 'two',
    });
    expect(a.fingerprint).toBe(b.fingerprint);
    expect(a.fingerprint).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('should give a different fingerprint for different content', () => {
    const base: PublishEventInput = { type: 'vm.started', body: { n: 1 }, message: 'm' };
    const fp = (input: PublishEventInput) => validateEventInput(input).fingerprint;
    const reference = fp(base);
    const variants: PublishEventInput[] = [
      { ...base, type: 'vm.stopped' },
      { ...base, body: { n: 2 } },
      { ...base, body: [1] },
      { ...base, message: 'M' },
      { ...base, inbox: 'ops' },
      { ...base, severity: 'ERROR' },
      { ...base, timestamp: 0 },
      { ...base, resource: { type: 'vm', id: '1' } },
      { ...base, actor: 'alice' },
    ];
    const prints = variants.map(fp);
    expect(prints).not.toContain(reference);
    expect(new Set(prints).size).toBe(prints.length);
  });

  it('should keep the fingerprints of earlier versions, so stored events still match their retries', () => {
    const inputs: PublishEventInput[] = [
      { type: 'vm.started' },
      {
        type: 'vm.started',
        inbox: 'ops',
        clientId: 'c',
        message: 'héllo "q"\n',
        body: { b: [1, { y: 2, x: null }], a: 'z', é: true },
        severity: 'ERROR',
        category: 'cat',
        action: 'act',
        resource: { id: '1', type: 'vm' },
        actor: 'alice',
        source: 'svc',
        parentId: 'p1',
        correlationId: 'corr',
        timestamp: '2026-01-31T12:00:00Z',
      },
      { type: 'x', body: [3, 'a', null], timestamp: 0 },
      { type: 'x', body: 'just a string' },
    ];
    expect(inputs.map((i) => validateEventInput(i, undefined, 123).fingerprint)).toEqual([
      'DJvURiFT0R-cRdnWgUhKvXRMKo2lx9xi37jNMnqmfg0',
      'rWB_AZVHmisBgQVXnG1PM6kzLTjMtwuar-0mltkgJYs',
      'WdWne8lEMNwyyN2M6fHMRAbUNoKmlYzLcusqz1KwHpI',
      'fzv78aSGsQ0D9Tm6chtw8jLBkxqDB9L5_o37_mpffP0',
    ]);
  });
});
