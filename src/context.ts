/**
 * The GraphQL context: the instance's services, the caller's visibility, and per-request
 * DataLoaders. Resolvers reach the store and the hub only through it.
 */
import DataLoader from 'dataloader';
import { compileFilter, matchesClauses, type Clause } from './events/filter.js';
import type { PublishFn } from './events/publish.js';
import type { StoredEvent, Visibility } from './events/types.js';
import type { Hub } from './hub/hub.js';
import type { EventStore } from './store/types.js';

/** What every request of one instance shares. */
export interface Services {
  store: EventStore;
  hub: Hub;
  publish: PublishFn;
  /** Largest `first`/`last` of the `events` query. */
  maxPageSize: number;
}

/** Per-request loaders: one store query per level of `parent`/`children`, never one per event. */
export interface Loaders {
  /** Events by id, restricted to what the caller may see. */
  eventById: DataLoader<string, StoredEvent | null>;
  /** Children of an event, oldest first, restricted to what the caller may see. */
  childrenOf: DataLoader<string, StoredEvent[]>;
}

/** The context of one GraphQL execution. */
export interface TidingsContext {
  services: Services;
  /** What the caller may read. */
  visibility: Visibility;
  /** {@link visibility} compiled once for the store and the matcher. */
  visibilityClauses: readonly Clause[];
  loaders: Loaders;
}

/** Creates a context for one request (or one stream execution) of a caller. */
export function createContext(services: Services, visibility: Visibility): TidingsContext {
  const visibilityClauses = compileFilter(null, visibility);
  const { store } = services;
  return {
    services,
    visibility,
    visibilityClauses,
    loaders: {
      eventById: new DataLoader(async (ids) => {
        const events = await store.getByIds(ids);
        return events.map((e) => (e && matchesClauses(e, visibilityClauses) ? e : null));
      }),
      childrenOf: new DataLoader((ids) => store.getChildren(ids, visibilityClauses)),
    },
  };
}
