/**
 * `tidings/testing`: lets a service check, in its own tests, which events it emitted. An
 * in-process Tidings on an in-memory store records every event published through it.
 *
 * ```ts
 * const tidings = await createTestTidings();
 * await myService.stopVm(42, tidings);            // the code under test calls tidings.event(...)
 * expect(tidings.emitted({ type: 'vm.*' })).toMatchObject([{ resource: { type: 'vm', id: '42' } }]);
 * expect(tidings.childrenOf(tidings.emitted()[0]!)).toHaveLength(2);
 * ```
 */
import { matchesClauses, compileFilter } from './events/filter.js';
import type { EventFilter, StoredEvent } from './events/types.js';
import { SEE_EVERYTHING } from './events/types.js';
import { createTidings, type CreateTidingsOptions, type Tidings } from './embed.js';

/** A Tidings for tests that remembers what was published. */
export interface TestTidings extends Tidings {
  /** The events published so far, in order, optionally only those matching `filter`. */
  emitted(filter?: EventFilter): StoredEvent[];
  /** The last event of `type` (exact, or a `prefix*`), or undefined. */
  last(type: string): StoredEvent | undefined;
  /** The published events whose parent is `parent`. */
  childrenOf(parent: Pick<StoredEvent, 'id'>): StoredEvent[];
  /** Forgets what was published so far. */
  clear(): void;
}

/**
 * Creates an in-process Tidings on `sqlite::memory:` that does not listen (pass `listen: true` to
 * serve HTTP too), recording every event stored through it, from `emit`, the builder or the API.
 */
export async function createTestTidings(options: CreateTidingsOptions = {}): Promise<TestTidings> {
  const tidings = await createTidings({
    store: 'sqlite::memory:',
    logLevel: 'silent',
    listen: false,
    ...options,
  });
  let recorded: StoredEvent[] = [];
  tidings.app.bus.subscribe((events) => {
    recorded.push(...events);
  });
  const matching = (filter: EventFilter | undefined) => {
    if (!filter) return [...recorded];
    const clauses = compileFilter(filter, SEE_EVERYTHING);
    return recorded.filter((e) => matchesClauses(e, clauses));
  };
  return {
    ...tidings,
    emitted: matching,
    last: (type) => matching({ types: [type] }).at(-1),
    childrenOf: (parent) => recorded.filter((e) => e.parentId === parent.id),
    clear: () => {
      recorded = [];
    },
  };
}

export type { StoredEvent, EventFilter };
