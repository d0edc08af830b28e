/**
 * The event domain: what a stored event looks like, what a publisher sends, and the filter
 * shared by the history query and the live stream.
 */
import type { EventFieldValues, FieldFilterArgs } from './fields.js';

/** Severity levels, lowest first. The order is the one used for sorting and display. */
export const SEVERITIES = ['DEBUG', 'INFO', 'SUCCESS', 'WARNING', 'ERROR', 'CRITICAL'] as const;

/** One of {@link SEVERITIES}. */
export type Severity = (typeof SEVERITIES)[number];

/** The inbox an event lands in when its publisher names none. */
export const GLOBAL_INBOX = 'global';

/** The inbox of Tidings' own `tidings.*` events about its trouble; only admins read it. */
export const SYSTEM_INBOX = 'system';

/** A reference to the thing an event is about, e.g. `{ type: 'vm', id: 'vm-42' }`. */
export interface ResourceRef {
  /** Kind of resource, e.g. `vm`, `nuvlabox`. */
  type: string;
  /** The resource's identifier. */
  id: string;
}

/**
 * A validated event, ready to be appended to a store. Produced by `validateEventInput`; every
 * optional field the publisher left out is `null`, never `undefined`, so stores can bind it as is.
 * Its fields are those of the table in `fields.ts`.
 */
export interface NewEvent extends EventFieldValues {
  /**
   * Set when the server generated `id` for this publish: no stored event can have it, so the
   * store need not look it up.
   */
  generatedId?: true;
}

/** An event as the store holds it: a {@link NewEvent} plus its place in the stream. */
export interface StoredEvent extends NewEvent {
  /** Position in the store's single sequence; strictly increasing in commit order. */
  seq: number;
  /** The opaque cursor for {@link StoredEvent.seq}, also the SSE `id:`. */
  cursor: string;
  /** When the server stored it, in milliseconds since the epoch. */
  receivedAt: number;
}

/**
 * Filter shared by the `events` query and the `eventStream` subscription. Every field is optional;
 * the fields combine with AND, the values inside one list with OR. Its arguments are those the
 * table in `fields.ts` declares, plus the time range.
 */
export interface EventFilter extends FieldFilterArgs {
  /** Exact types, or prefixes when an entry ends in `*` (`vm.*`). */
  types?: readonly string[] | null;
  /** Inclusive lower bound on `timestamp`, epoch milliseconds. */
  since?: number | null;
  /** Exclusive upper bound on `timestamp`, epoch milliseconds. */
  until?: number | null;
}

/**
 * Who may see what. The store applies it inside its query, and the hub before it delivers, so a
 * page is never filtered after it was read.
 */
export interface Visibility {
  /** Inbox names or `prefix*` patterns the reader may read; `null` means every inbox. */
  inboxes: readonly string[] | null;
  /**
   * Targeted events (those with a `clientId`) this reader may see: `'all'` for admins, a client id
   * for that client's own events, `null` for broadcast events only.
   */
  clients: 'all' | string | null;
  /** Inboxes this reader never sees, whatever `inboxes` says (the `system` inbox for non-admins). */
  hiddenInboxes?: readonly string[];
}

/** A visibility that sees every event. */
export const SEE_EVERYTHING: Visibility = Object.freeze({ inboxes: null, clients: 'all' });
