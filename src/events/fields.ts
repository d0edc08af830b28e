/**
 * The table of event fields: the one place an event field is declared. Validation (the fast check
 * and the schema in `validate.ts`), the defaults, the fingerprint, the filters, the stores' column
 * lists, bind order and row mappings, and the {@link NewEvent} and {@link PublishEventInput} types
 * are all derived from it, so a new field is one entry here (plus its GraphQL field and a
 * migration per store).
 *
 * This module depends on nothing but the domain's own constants, so anything (the CLI included)
 * can read the field list without loading the validator.
 */
import { GLOBAL_INBOX, type ResourceRef, type Severity } from './types.js';

/** How the value a publisher sends for a field is checked. */
export type FieldCheck =
  /** 1–128 characters of `[A-Za-z0-9_.:-]`: types, inboxes, ids. */
  | { readonly kind: 'name' }
  /**
   * 1–256 characters without control characters (tab and newlines allowed), matching `pattern`
   * (without the `g` flag) when there is one; `rule` says what it requires, for the message.
   */
  | {
      readonly kind: 'label';
      readonly pattern?: RegExp;
      readonly rule?: string;
      /** A value that matches `pattern`, for documentation and tests. */
      readonly example?: string;
    }
  /** Up to `max` characters without control characters (tab and newlines allowed). */
  | { readonly kind: 'text'; readonly max: number }
  /** One of `SEVERITIES`. */
  | { readonly kind: 'severity' }
  /** An object of exactly these labels, e.g. `{ type, id }`. */
  | { readonly kind: 'parts'; readonly parts: readonly string[] }
  /** A `Date`, an ISO 8601 date-time with a time zone, or epoch milliseconds. */
  | { readonly kind: 'date' }
  /** Any JSON value, up to the body size limit. */
  | { readonly kind: 'json' };

/**
 * How the fingerprint (which tells a harmless retry of an id from a conflicting reuse of it)
 * covers a field:
 * - `always`: its normalised value, `null` included;
 * - `given`: the value as the publisher gave it, `null` when the server filled it in;
 * - `whenSet`: its value when it has one, nothing otherwise. Every field added after the first
 *   release must use this, so the events stored before it keep their fingerprint;
 * - `never`: not at all (the id, which is the key, and the fingerprint itself).
 */
export type FingerprintRule = 'always' | 'given' | 'whenSet' | 'never';

/**
 * How the history filter tests a field: `list` is a list argument whose entries match exactly or
 * by prefix (`vm.*`), `equals` a single value; `parts` gives one argument per part.
 */
export type FieldFilter =
  | { readonly match: 'list'; readonly arg: string }
  | { readonly match: 'equals'; readonly arg: string }
  | { readonly match: 'parts'; readonly args: Readonly<Record<string, string>> };

/** One entry of {@link EVENT_FIELDS}. */
export interface EventFieldSpec {
  /** How a publisher's value is checked; `null` for a field only the server sets. */
  readonly check: FieldCheck | null;
  /** Whether a publisher must send it. */
  readonly required?: true;
  /**
   * What the server sets when the publisher leaves it out: a constant, `uuid` (a new UUIDv7) or
   * `now` (the time of the publish). Without one, a missing value is `null`.
   */
  readonly fallback?: { readonly value: string } | 'uuid' | 'now';
  readonly fingerprint: FingerprintRule;
  /** The filter argument(s) testing it, when the history filter and the streams can. */
  readonly filter?: FieldFilter;
}

/**
 * Every field of an event, in the order validation reports problems. Each key is a field of
 * {@link NewEvent}; its comment is the field's documentation there.
 */
export const EVENT_FIELDS = {
  /** UUIDv7 unless the publisher supplied its own id (which makes the publish idempotent). */
  id: { check: { kind: 'name' }, fallback: 'uuid', fingerprint: 'never' },
  /** What happened, e.g. `vm.state_changed`. */
  type: {
    check: { kind: 'name' },
    required: true,
    fingerprint: 'always',
    filter: { match: 'list', arg: 'types' },
  },
  /** The channel; `global` when the publisher names none. */
  inbox: {
    check: { kind: 'name' },
    fallback: { value: GLOBAL_INBOX },
    fingerprint: 'always',
    filter: { match: 'list', arg: 'inboxes' },
  },
  /** Set: only that client's streams (and admins) receive it. */
  clientId: { check: { kind: 'label' }, fingerprint: 'always' },
  /** Human text. */
  message: { check: { kind: 'text', max: 65_536 }, fingerprint: 'always' },
  /**
   * The payload, stored and returned as is, never indexed. Already in its JSON form (what
   * `JSON.parse(JSON.stringify(body))` gives), so stores return it without re-parsing.
   */
  body: { check: { kind: 'json' }, fingerprint: 'always' },
  severity: {
    check: { kind: 'severity' },
    fallback: { value: 'INFO' },
    fingerprint: 'always',
    filter: { match: 'list', arg: 'severities' },
  },
  category: {
    check: { kind: 'label' },
    fingerprint: 'always',
    filter: { match: 'list', arg: 'categories' },
  },
  action: {
    check: { kind: 'label' },
    fingerprint: 'always',
    filter: { match: 'list', arg: 'actions' },
  },
  /** What was acted upon. */
  resource: {
    check: { kind: 'parts', parts: ['type', 'id'] },
    fingerprint: 'always',
    filter: { match: 'parts', args: { type: 'resourceType', id: 'resourceId' } },
  },
  /** The user who caused it. */
  actor: {
    check: { kind: 'label' },
    fingerprint: 'always',
    filter: { match: 'equals', arg: 'actor' },
  },
  /** The system that emitted it. */
  source: {
    check: { kind: 'label' },
    fingerprint: 'always',
    filter: { match: 'equals', arg: 'source' },
  },
  correlationId: {
    check: { kind: 'label' },
    fingerprint: 'always',
    filter: { match: 'equals', arg: 'correlationId' },
  },
  /** The event this one answers. */
  parentId: {
    check: { kind: 'name' },
    fingerprint: 'always',
    filter: { match: 'equals', arg: 'parentId' },
  },
  /** When it happened, in milliseconds since the epoch. */
  timestamp: { check: { kind: 'date' }, fallback: 'now', fingerprint: 'given' },
  /**
   * A digest of what the publisher sent (not of defaults the server filled in), used to tell a
   * harmless retry of the same id from a conflicting reuse of it.
   */
  fingerprint: { check: null, fingerprint: 'never' },
} as const satisfies Record<string, EventFieldSpec>;

/** The table's type. */
type Fields = typeof EVENT_FIELDS;

/** The name of an event field. */
export type EventFieldName = keyof Fields;

/** The value a check admits, once validated. */
type Checked<C> = C extends { kind: 'name' | 'label' | 'text' }
  ? string
  : C extends { kind: 'severity' }
    ? Severity
    : C extends { kind: 'parts'; parts: readonly ['type', 'id'] }
      ? ResourceRef
      : C extends { kind: 'parts'; parts: readonly (infer P extends string)[] }
        ? Record<P, string>
        : C extends { kind: 'date' }
          ? number
          : unknown;

/** The value a publisher may send for a check. */
type Sent<C> = C extends { kind: 'date' } ? Date | string | number : Checked<C>;

/** The stored value of a field: `null` when the publisher may leave it out and it has no default. */
type Stored<S> = S extends { check: null }
  ? string
  : S extends { check: infer C }
    ? S extends { required: true } | { fallback: unknown }
      ? Checked<C>
      : Checked<C> | null
    : never;

/** The fields a publisher sends. */
type InputName = {
  [K in EventFieldName]: Fields[K]['check'] extends null ? never : K;
}[EventFieldName];
/** The fields a publisher must send. */
type RequiredName = {
  [K in EventFieldName]: Fields[K] extends { required: true } ? K : never;
}[EventFieldName];

/** Every field of a validated event, as {@link EVENT_FIELDS} declares it. */
export type EventFieldValues = { -readonly [K in EventFieldName]: Stored<Fields[K]> };

/**
 * What a publisher sends: the `PublishEventInput` of the GraphQL contract, or `emit`'s argument.
 * Only `type` is required; `timestamp` is a `Date`, an ISO 8601 date-time with a time zone (a date
 * that exists) or epoch milliseconds, and defaults to now.
 */
export type PublishEventInput = {
  -readonly [K in RequiredName]: Sent<Fields[K]['check']>;
} & {
  -readonly [K in Exclude<InputName, RequiredName>]?: Sent<Fields[K]['check']> | null;
};

/** The table as a list, in its order. */
export const FIELD_LIST: readonly (EventFieldSpec & { readonly name: EventFieldName })[] =
  Object.entries(EVENT_FIELDS).map(([name, spec]) => ({ name: name as EventFieldName, ...spec }));

/** The fields a publisher may send, in the table's order. */
export const PUBLISH_FIELDS: readonly EventFieldName[] = FIELD_LIST.filter(
  (f) => f.check !== null,
).map((f) => f.name);

/** The list arguments of the filter, by the field they test. */
type ListArg<S> = S extends { filter: { match: 'list'; arg: infer A extends string } } ? A : never;
/** The single-value arguments of the filter. */
type EqualsArg<S> = S extends { filter: { match: 'equals'; arg: infer A extends string } }
  ? A
  : S extends { filter: { match: 'parts'; args: infer P } }
    ? P[keyof P] & string
    : never;

/**
 * The filter arguments the table declares: a list of values (exact, or `prefix*`) per `list`
 * field, one value per `equals` field or part. `EventFilter` adds the time range.
 */
export type FieldFilterArgs = {
  -readonly [K in EventFieldName as ListArg<Fields[K]>]?:
    readonly Checked<Fields[K]['check']>[] | null;
} & {
  -readonly [K in EventFieldName as EqualsArg<Fields[K]>]?: string | null;
};

/**
 * The event values a filter clause can test: each field the table makes filterable (each part
 * of a `parts` field), the client id (for visibility) and the timestamp (for the time range).
 */
export type FilterField =
  | {
      [K in EventFieldName]: Fields[K] extends { filter: { match: 'list' | 'equals' } }
        ? K
        : EqualsArg<Fields[K]>;
    }[EventFieldName]
  | 'clientId'
  | 'timestamp';
