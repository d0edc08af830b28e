/**
 * The `events` table's columns, derived from the table of event fields (`src/events/fields.ts`),
 * for both stores: the column list and bind order of an insert, and the mapping of a row back to
 * its event. A field's column is its name in snake case (`parentId` is `parent_id`), a `parts`
 * field has one column per part (`resource_type`, `resource_id`); {@link COLUMN_NAMES} lists the
 * exceptions. A new field thus needs no code here, only a migration adding its column.
 */
import { encodeCursor } from '../events/cursor.js';
import { FIELD_LIST, type EventFieldName } from '../events/fields.js';
import type { FilterField } from '../events/filter.js';
import type { NewEvent, StoredEvent } from '../events/types.js';

/** Columns named otherwise than by the rule above, kept from the first schema. */
const COLUMN_NAMES: Partial<Record<EventFieldName, string>> = { timestamp: 'ts' };

/** What a column holds, for the stores' types: text, an integer (epoch ms) or JSON text. */
export type ColumnKind = 'text' | 'integer' | 'json';

/** One column an event field is stored in. */
export interface EventColumn {
  /** The column's name in `events`. */
  name: string;
  kind: ColumnKind;
  /** The field it stores. */
  field: EventFieldName;
  /** The part of a `parts` field it stores. */
  part?: string;
}

const snake = (name: string): string => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/**
 * The columns of an event's fields, in the table's order: an insert binds them in this order, then
 * `received_at`, which the store sets. `seq` is the store's own.
 */
export const EVENT_COLUMN_LIST: readonly EventColumn[] = FIELD_LIST.flatMap((f): EventColumn[] => {
  const name = COLUMN_NAMES[f.name] ?? snake(f.name);
  switch (f.check?.kind) {
    case 'parts':
      return f.check.parts.map((part) => ({
        name: `${name}_${snake(part)}`,
        kind: 'text',
        field: f.name,
        part,
      }));
    case 'date':
      return [{ name, kind: 'integer', field: f.name }];
    case 'json':
      return [{ name, kind: 'json', field: f.name }];
    default:
      return [{ name, kind: 'text', field: f.name }];
  }
});

/** The number of columns an insert binds from an event. */
export const EVENT_COLUMN_COUNT: number = EVENT_COLUMN_LIST.length;

/** The filter field a column answers to: a part's is the argument the table names for it. */
function filterName(c: EventColumn): string {
  if (c.part === undefined) return c.field;
  const filter = FIELD_LIST.find((f) => f.name === c.field)?.filter;
  return filter?.match === 'parts' ? (filter.args[c.part] ?? c.part) : `${c.field}.${c.part}`;
}

/**
 * The column each filter field tests (the stores' `events` tables name them alike): a filterable
 * field's own column, a part's column for a part of a `parts` field.
 */
export const FILTER_COLUMNS: Readonly<Record<FilterField, string>> = Object.fromEntries(
  EVENT_COLUMN_LIST.map((c) => [filterName(c), c.name]),
) as Record<FilterField, string>;

/**
 * A row of `events` as the drivers return it: the columns above (a JSON column as its text),
 * `seq` and `received_at`.
 */
export interface EventRow {
  seq: number;
  received_at: number;
  id: string;
  inbox: string;
  parent_id: string | null;
  fingerprint: string;
  readonly [column: string]: unknown;
}

/**
 * Writes the column values of `e` into `params` from `at` on, in the order of
 * {@link EVENT_COLUMN_LIST}; a JSON value as its text.
 */
export function bindEvent(params: unknown[], at: number, e: NewEvent): void {
  const values = e as unknown as Record<string, unknown>;
  for (let k = 0; k < EVENT_COLUMN_COUNT; k++) {
    const c = EVENT_COLUMN_LIST[k] as EventColumn;
    const value = values[c.field] ?? null;
    params[at + k] =
      value === null
        ? null
        : c.part !== undefined
          ? (value as Record<string, unknown>)[c.part]
          : c.kind === 'json'
            ? (JSON.stringify(value) ?? null)
            : value;
  }
}

/** The event a row stores. */
export function toStoredEvent(row: EventRow): StoredEvent {
  const event: Record<string, unknown> = {};
  for (const c of EVENT_COLUMN_LIST) {
    const value = row[c.name] ?? null;
    if (c.part === undefined) {
      event[c.field] =
        c.kind === 'json' && value !== null ? (JSON.parse(value as string) as unknown) : value;
    } else if (!(c.field in event)) {
      // The first part's column tells whether the field is set.
      event[c.field] = value === null ? null : { [c.part]: value };
    } else {
      const parts = event[c.field] as Record<string, unknown> | null;
      if (parts !== null) parts[c.part] = value ?? '';
    }
  }
  event.seq = row.seq;
  event.cursor = encodeCursor(row.seq);
  event.receivedAt = row.received_at;
  return event as unknown as StoredEvent;
}

/**
 * The stored form of a new event: `e` (whose JSON values are already as they read back, see
 * {@link NewEvent}) at its place in the stream.
 */
export function storedEvent(e: NewEvent, seq: number, receivedAt: number): StoredEvent {
  // Fields are copied one by one, always in the same order, so every stored event has the same
  // shape: an object rest (`{ generatedId, ...fields }`) builds a slow dictionary-mode object per
  // event, which cost a third of the throughput of batched publishes.
  const values = e as unknown as Record<string, unknown>;
  const event: Record<string, unknown> = {};
  for (let i = 0; i < FIELD_NAMES.length; i++) {
    const name = FIELD_NAMES[i] as EventFieldName;
    event[name] = values[name];
  }
  event.seq = seq;
  event.cursor = encodeCursor(seq);
  event.receivedAt = receivedAt;
  return event as unknown as StoredEvent;
}

/** The names of the fields of an event, in the table's order. */
const FIELD_NAMES: readonly EventFieldName[] = FIELD_LIST.map((f) => f.name);
