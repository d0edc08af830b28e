/**
 * The GraphQL context: the instance's services, the caller and what it may see, and per-request
 * DataLoaders. Resolvers reach the store and the hub only through it.
 */
import DataLoader from 'dataloader';
import { visibilityOf, type Principal } from './auth/principal.js';
import type { CutOff } from './auth/cutoff.js';
import type { RateLimiter } from './auth/rate-limit.js';
import { compileFilter, type Clause } from './events/filter.js';
import type { PublishFn } from './publish/publisher.js';
import type { StoredEvent, Visibility } from './events/types.js';
import type { Hub } from './hub/hub.js';
import type { StreamControl } from './stream/types.js';
import type { EventStore } from './store/types.js';

/** What every request of one instance shares. */
export interface Services {
  store: EventStore;
  hub: Hub;
  publish: PublishFn;
  /** Largest `first`/`last` of the `events` query. */
  maxPageSize: number;
  /** Most inboxes one `eventStream` may name. */
  maxStreamInboxes: number;
  /** Most entries of each filter list (and of a stream's `inboxes`). */
  maxFilterItems: number;
  /** Publish rate per authenticated caller. */
  publishLimiter: RateLimiter;
  /** Changes the log level of this instance; returns the previous one. */
  setLogLevel: (level: string) => string;
  /** The open streams of this instance, for admins to list. */
  streams: StreamControl;
  /**
   * Ends matching streams here and asks the other instances to end theirs; resolves with how
   * many ended here.
   */
  cutOff: (cut: CutOff) => Promise<number>;
}

/** Per-request loaders: one store query per level of `parent`/`children`, never one per event. */
export interface Loaders {
  /**
   * The events with an id (at most one per inbox, as ids are scoped to their inbox), oldest
   * first, restricted to what the caller may see.
   */
  eventsById: DataLoader<string, StoredEvent[]>;
  /** Children of an event, oldest first, restricted to what the caller may see. */
  childrenOf: DataLoader<string, StoredEvent[]>;
}

/** The context of one GraphQL execution. */
export interface TidingsContext {
  services: Services;
  /** Who is calling. */
  principal: Principal;
  /** What the caller may read. */
  visibility: Visibility;
  /** {@link visibility} compiled once for the store and the matcher. */
  visibilityClauses: readonly Clause[];
  loaders: Loaders;
}

/**
 * Creates a context for one request (or one stream execution) of `principal`. `visibility` is
 * the principal's unless given (tests narrow it).
 */
export function createContext(
  services: Services,
  principal: Principal,
  visibility: Visibility = visibilityOf(principal),
): TidingsContext {
  const visibilityClauses = compileFilter(null, visibility);
  const { store } = services;
  return {
    services,
    principal,
    visibility,
    visibilityClauses,
    loaders: {
      eventsById: new DataLoader((ids) => store.getByIds(ids, visibilityClauses)),
      childrenOf: new DataLoader((ids) => store.getChildren(ids, visibilityClauses)),
    },
  };
}

/**
 * The event a `parentId` names, among `namesakes` (the events with that id the caller may see,
 * oldest first): the one in the child's own inbox, else the oldest. Ids are scoped to their inbox,
 * so an id can name events in several inboxes; only visible ones are candidates, so the answer
 * says nothing about inboxes the caller cannot read.
 */
export function parentAmong(
  child: { inbox: string },
  namesakes: readonly StoredEvent[],
): StoredEvent | null {
  return namesakes.find((e) => e.inbox === child.inbox) ?? namesakes[0] ?? null;
}
