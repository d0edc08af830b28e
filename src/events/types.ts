/**
 * The event domain: what a stored event looks like, what a publisher sends, and the filter
 * shared by the history query and the live stream.
 */

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
 */
export interface NewEvent {
  /** UUIDv7 unless the publisher supplied its own id (which makes the publish idempotent). */
  id: string;
  /**
   * Set when the server generated `id` for this publish: no stored event can have it, so the
   * store need not look it up.
   */
  generatedId?: true;
  type: string;
  inbox: string;
  clientId: string | null;
  /** When it happened, in milliseconds since the epoch. */
  timestamp: number;
  message: string | null;
  /**
   * The payload, stored and returned as is, never indexed. Already in its JSON form (what
   * `JSON.parse(JSON.stringify(body))` gives), so stores return it without re-parsing.
   */
  body: unknown;
  severity: Severity;
  category: string | null;
  action: string | null;
  resource: ResourceRef | null;
  actor: string | null;
  source: string | null;
  parentId: string | null;
  correlationId: string | null;
  /**
   * A digest of what the publisher sent (not of defaults the server filled in), used to tell a
   * harmless retry of the same id from a conflicting reuse of it.
   */
  fingerprint: string;
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
 * the fields combine with AND, the values inside one list with OR.
 */
export interface EventFilter {
  inboxes?: readonly string[] | null;
  /** Exact types, or prefixes when an entry ends in `*` (`vm.*`). */
  types?: readonly string[] | null;
  severities?: readonly Severity[] | null;
  categories?: readonly string[] | null;
  actions?: readonly string[] | null;
  resourceType?: string | null;
  resourceId?: string | null;
  actor?: string | null;
  source?: string | null;
  correlationId?: string | null;
  parentId?: string | null;
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
