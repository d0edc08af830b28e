/**
 * The `EventStore` port: durable, ordered storage of events. Adapters live beside this file, one
 * per backend (`sqlite.ts`, …), and all pass the shared contract suite in `test/store/`.
 */
import type { Clause } from '../events/filter.js';
import type { NewEvent, StoredEvent } from '../events/types.js';

/** Order of a history page. */
export type EventOrder = 'NEWEST_FIRST' | 'OLDEST_FIRST';

/** A page request over the events matching `clauses`, in Relay terms. */
export interface PageQuery {
  /** Compiled filter and visibility (see `compileFilter`). */
  clauses: readonly Clause[];
  /** @default 'NEWEST_FIRST' */
  order?: EventOrder;
  /** Return the first `first` events after `afterSeq` (in `order`). */
  first?: number | null;
  /** Return the last `last` events before `beforeSeq` (in `order`). */
  last?: number | null;
  /** Exclusive bound: only events that come after this sequence in `order`. */
  afterSeq?: number | null;
  /** Exclusive bound: only events that come before this sequence in `order`. */
  beforeSeq?: number | null;
}

/** One page of events plus whether more exist on either side. */
export interface Page {
  /** The events, in the requested order. */
  events: StoredEvent[];
  hasNextPage: boolean;
  hasPreviousPage: boolean;
}

/** The outcome of appending one event. */
export interface AppendOutcome {
  event: StoredEvent;
  /** False when an event with the same id and content already existed (an idempotent retry). */
  created: boolean;
}

/** One read of a replay. */
export interface ReplayBatch {
  /** The events, oldest first. */
  events: StoredEvent[];
  /** The retention horizon when they were read: events up to this sequence are gone. */
  purgedThrough: number;
}

/** What one {@link StoreRetention.purge} call removed. */
export interface PurgeResult {
  /** Events removed. */
  deleted: number;
  /** The retention horizon after the call. */
  purgedThrough: number;
}

/** A revoked token, or every token of a subject issued until `at`. */
export interface Revocation {
  kind: 'token' | 'subject';
  /** The `jti`, or the `sub`. */
  value: string;
  /** When it was revoked, epoch ms. */
  at: number;
}

/** The answer of {@link StoreRevocations.lookup}. */
export interface RevocationTimes {
  token: number | null;
  subject: number | null;
}

/**
 * The retention capability of a store: it removes old events, and remembers how far it did so that
 * a replay can tell "no event matched" from "the events were purged".
 */
export interface StoreRetention {
  /**
   * Removes the oldest events received before `before` (epoch ms), at most `limit` of them, in
   * one short transaction. Only a prefix of the sequence is ever removed, so every event after
   * the horizon is still stored. Call it again while `deleted === limit`.
   */
  purge(before: number, limit: number): Promise<PurgeResult>;
  /** The retention horizon: the highest sequence removed by {@link purge}, 0 if none. */
  purgedThrough(): Promise<number>;
}

/**
 * The revocation capability of a store: a list of revoked JWTs shared by every instance on the
 * store, so a token revoked on one is refused by all.
 */
export interface StoreRevocations {
  /**
   * Records that a token (`kind: 'token'`, by `jti`) or every token of a subject issued until
   * `at` (`kind: 'subject'`) is revoked. Idempotent; a later revocation of a subject moves `at`.
   */
  revoke(revocation: Revocation): Promise<void>;
  /** When the token and the subject were revoked (epoch ms), `null` where they were not. */
  lookup(tokenId: string | null, subject: string | null): Promise<RevocationTimes>;
}

/** Facts a store declares about itself (every one `false` when absent). */
export interface StoreFlags {
  /**
   * An append that rejected (a deadline passed, the connection was lost) may still have been
   * committed: its events can appear in the store although nobody was told. A server on such a
   * store reads them back by sequence (the sequencer), whatever its bus.
   */
  readonly unconfirmedCommits?: boolean;
}

/** The optional capabilities of an {@link EventStore}. */
export type StoreCapability = 'retention' | 'revocations';

/**
 * Durable, ordered event storage: a required core, plus optional capabilities (`retention`,
 * `revocations`) that a backend may lack. A caller needing a capability checks for it when it
 * starts (`requireCapability` in `store/index.ts`), so a missing one stops the server with a
 * clear message instead of failing later or being skipped.
 */
export interface EventStore {
  /** Backend name used in messages and metrics, e.g. `sqlite`. */
  readonly kind: string;
  /**
   * Appends events atomically, in order, and resolves only after they are durably committed.
   * Ids are scoped to their inbox: two inboxes may hold the same id, each its own event. An event
   * whose id exists in its inbox with the same fingerprint is returned as it was stored
   * (`created: false`); with another fingerprint the whole batch fails with a `ConflictError`.
   * Events of other inboxes never take part, so a publisher learns nothing about them.
   */
  append(events: readonly NewEvent[]): Promise<AppendOutcome[]>;
  /**
   * The events with each id that match `clauses` (at most one per inbox), oldest first, in the
   * order asked, in one query; an empty list where there is none.
   */
  getByIds(ids: readonly string[], clauses: readonly Clause[]): Promise<StoredEvent[][]>;
  /** The children of each parent id, oldest first, in one query, restricted by `clauses`. */
  getChildren(parentIds: readonly string[], clauses: readonly Clause[]): Promise<StoredEvent[][]>;
  /** A page of history. */
  page(query: PageQuery): Promise<Page>;
  /**
   * Up to `limit` events with `seq > afterSeq` that match `clauses`, oldest first: the replay that
   * precedes a live stream. The retention horizon is read in the same snapshot, so a replay can
   * tell "no event matched" from "the events were purged" (a store without the retention
   * capability answers 0).
   */
  readAfter(afterSeq: number, clauses: readonly Clause[], limit: number): Promise<ReplayBatch>;
  /**
   * Removing old events, present on a store that can do it. A caller that needs it (the
   * retention loop, `tidings purge`) checks for it where it starts and refuses to start without
   * it.
   */
  readonly retention?: StoreRetention;
  /**
   * The list of revoked JWTs, present on a store that keeps one. `TIDINGS_AUTH=jwt` needs it: the
   * server refuses to start on a store without it.
   */
  readonly revocations?: StoreRevocations;
  /** Facts about the store that change how callers must use it. */
  readonly flags?: StoreFlags;
  /** The highest committed sequence, 0 when empty. */
  lastSeq(): Promise<number>;
  /**
   * Checks the store answers, and after a write it refused for a full disk or a locked file, that
   * it takes writes again; rejects with a `StoreError` (or `StoreBlockedError`) otherwise.
   */
  ping(): Promise<void>;
  /** Closes the store; further calls reject. */
  close(): Promise<void>;
}

/** A store with every capability, as the built-in adapters are. */
export type FullEventStore = EventStore & Required<Pick<EventStore, StoreCapability>>;

/**
 * How a server holds its store: `exclusive` when it is on the memory bus and so must be the only
 * server on the store, `shared` when it is on a shared bus (Redis) that reaches the others.
 */
export type ClaimMode = 'exclusive' | 'shared';

/**
 * A server's hold on its store, taken at start so that a server on the memory bus never shares
 * its store with another one (each would deliver only its own publishes). It goes with the
 * server's process or connection, however that ends.
 */
export interface StoreClaim {
  /** Throws (a `StoreError` saying why) while the claim is not held, e.g. its connection broke. */
  check(): void;
  /** Lets go of the claim. Idempotent. */
  release(): Promise<void>;
}
