/**
 * One implementation of event matching. A filter (plus a reader's visibility) compiles to a list
 * of clauses; the live stream evaluates them in memory with {@link matchesClauses} and the stores
 * render the same clauses in their query language (in `src/store/`), so history and live delivery
 * agree by construction.
 */
import { ValidationError } from '../errors.js';
import { FIELD_LIST, type FilterField } from './fields.js';
import type { EventFilter, StoredEvent, Visibility, NewEvent } from './types.js';

export type { FilterField } from './fields.js';

/** A single condition; a filter is the AND of its clauses. */
export type Clause =
  /** The field equals one of `values`, or starts with one of `prefixes`. */
  | { kind: 'match'; field: FilterField; values: string[]; prefixes: string[] }
  /** The field is null, or (when `values` is not empty) equals one of them. */
  | { kind: 'nullOr'; field: FilterField; values: string[] }
  /** A numeric range, `gte` inclusive and `lt` exclusive. */
  | { kind: 'range'; field: FilterField; gte: number | null; lt: number | null }
  /** The field is none of `values` (it is never null where this is used). */
  | { kind: 'notIn'; field: FilterField; values: string[] }
  /** Matches nothing (e.g. an empty list, or a filter disjoint from the visibility). */
  | { kind: 'none' };

/** Splits `['a', 'vm.*']` into exact values and prefixes. A lone `*` matches everything. */
function splitPatterns(
  patterns: readonly string[],
): { values: string[]; prefixes: string[] } | 'all' {
  const values: string[] = [];
  const prefixes: string[] = [];
  for (const p of patterns) {
    if (p === '*') return 'all';
    if (p.endsWith('*')) prefixes.push(p.slice(0, -1));
    else values.push(p);
  }
  return { values, prefixes };
}

function listClause(
  field: FilterField,
  patterns: readonly string[] | null | undefined,
): Clause | null {
  if (patterns == null) return null;
  if (patterns.length === 0) return { kind: 'none' };
  const split = splitPatterns(patterns);
  if (split === 'all') return null;
  return { kind: 'match', field, ...split };
}

function equalsClause(field: FilterField, value: string | null | undefined): Clause | null {
  return value == null ? null : { kind: 'match', field, values: [value], prefixes: [] };
}

/** One filter argument the table declares: the value it tests, and how. */
interface FilterArg {
  arg: keyof EventFilter;
  field: FilterField;
  list: boolean;
}

/** The filter arguments of the table, in its order. */
const FILTER_ARGS: readonly FilterArg[] = FIELD_LIST.flatMap((f): FilterArg[] => {
  const filter = f.filter;
  if (filter === undefined) return [];
  if (filter.match === 'parts') {
    return Object.values(filter.args).map((arg) => ({
      arg: arg as keyof EventFilter,
      field: arg as FilterField,
      list: false,
    }));
  }
  return [
    {
      arg: filter.arg as keyof EventFilter,
      field: f.name as FilterField,
      list: filter.match === 'list',
    },
  ];
});

/**
 * Compiles a filter and a visibility into clauses. Inbox names in the filter match exactly, or by
 * prefix when they end in `*`, like types; the visibility's inbox patterns apply on top.
 */
export function compileFilter(
  filter: EventFilter | null | undefined,
  visibility: Visibility,
): Clause[] {
  const f = (filter ?? {}) as Readonly<Record<string, unknown>>;
  // The inbox clauses first, as they always came: the stores' statements stay the same.
  const clauses: (Clause | null)[] = [
    listClause('inbox', f.inboxes as EventFilter['inboxes']),
    listClause('inbox', visibility.inboxes),
  ];
  for (const { arg, field, list } of FILTER_ARGS) {
    if (field === 'inbox') continue;
    clauses.push(
      list
        ? listClause(field, f[arg] as readonly string[] | null | undefined)
        : equalsClause(field, f[arg] as string | null | undefined),
    );
  }
  const { since, until } = filter ?? {};
  if (visibility.hiddenInboxes?.length) {
    clauses.push({ kind: 'notIn', field: 'inbox', values: [...visibility.hiddenInboxes] });
  }
  if (visibility.clients !== 'all') {
    clauses.push({
      kind: 'nullOr',
      field: 'clientId',
      values: visibility.clients === null ? [] : [visibility.clients],
    });
  }
  if (since != null || until != null) {
    clauses.push({ kind: 'range', field: 'timestamp', gte: since ?? null, lt: until ?? null });
  }
  const present = clauses.filter((c): c is Clause => c !== null);
  return present.some((c) => c.kind === 'none') ? [{ kind: 'none' }] : present;
}

/** The most entries one filter list may have unless configured (`TIDINGS_MAX_FILTER_ITEMS`). */
export const DEFAULT_MAX_FILTER_ITEMS = 100;

/**
 * The highest `TIDINGS_MAX_FILTER_ITEMS` accepted. Each entry of a list becomes one more term of
 * a disjunction in the stores' queries, and the embedded store refuses an expression nested deeper than 1000
 * levels; the store contract runs every list at this length on both stores.
 */
export const MAX_FILTER_ITEMS_LIMIT = 500;

/**
 * Refuses a list longer than `max` among `values` (a filter, or a stream's arguments). Every
 * array counts, so a list added to the filter later is bounded as well.
 * @param where what the lists are named after in the message, e.g. `filter.`
 * @throws ValidationError naming the list, the limit and `TIDINGS_MAX_FILTER_ITEMS`.
 */
export function checkFilterLists(values: object | null | undefined, max: number, where = ''): void {
  if (values == null) return;
  for (const [name, value] of Object.entries(values)) {
    if (Array.isArray(value) && value.length > max) {
      throw new ValidationError(
        `[filter] ${where}${name} has ${value.length} entries, over the limit of ${max} ` +
          '(TIDINGS_MAX_FILTER_ITEMS): match many at once with a prefix such as "vm.*", or ' +
          'split the request',
        { details: { field: `${where}${name}`, limit: max } },
      );
    }
  }
}

/** Reads a filter field's value from an event. */
type Reader = (event: Readonly<Record<string, unknown>>) => string | number | null;

/** The reader of each filter field: a field of the event, or a part of one. */
const READERS: Readonly<Record<string, Reader>> = Object.fromEntries(
  FIELD_LIST.flatMap((f): [string, Reader][] => {
    const name = f.name;
    if (f.filter?.match !== 'parts') {
      return [[name, (e) => (e[name] as string | number | null | undefined) ?? null]];
    }
    return Object.entries(f.filter.args).map(([part, arg]): [string, Reader] => [
      arg,
      (e) => ((e[name] as Record<string, string> | null)?.[part] as string | undefined) ?? null,
    ]);
  }),
);

/** Reads the value a clause tests from an event. */
export function fieldValue(event: NewEvent, field: FilterField): string | number | null {
  return (READERS[field] as Reader)(event as unknown as Readonly<Record<string, unknown>>);
}

/** Evaluates clauses against an event in memory, exactly as the stores do in their queries. */
export function matchesClauses(event: NewEvent | StoredEvent, clauses: readonly Clause[]): boolean {
  for (const clause of clauses) {
    if (clause.kind === 'none') return false;
    const value = fieldValue(event, clause.field);
    switch (clause.kind) {
      case 'match': {
        if (typeof value !== 'string') return false;
        if (!clause.values.includes(value) && !clause.prefixes.some((p) => value.startsWith(p))) {
          return false;
        }
        break;
      }
      case 'nullOr': {
        if (value !== null && !clause.values.includes(String(value))) return false;
        break;
      }
      case 'notIn': {
        if (typeof value === 'string' && clause.values.includes(value)) return false;
        break;
      }
      case 'range': {
        if (typeof value !== 'number') return false;
        if (clause.gte !== null && value < clause.gte) return false;
        if (clause.lt !== null && value >= clause.lt) return false;
        break;
      }
    }
  }
  return true;
}
