/**
 * One implementation of event matching. A filter (plus a reader's visibility) compiles to a list
 * of clauses; the live stream evaluates them in memory with {@link matchesClauses} and the stores
 * render the same clauses in their query language (in `src/store/`), so history and live delivery
 * agree by construction.
 */
import { ValidationError } from '../errors.js';
import type { EventFilter, StoredEvent, Visibility, NewEvent } from './types.js';

/** The event values a clause can test. Each maps to one store column. */
export type FilterField =
  | 'inbox'
  | 'type'
  | 'severity'
  | 'category'
  | 'action'
  | 'resourceType'
  | 'resourceId'
  | 'actor'
  | 'source'
  | 'correlationId'
  | 'parentId'
  | 'clientId'
  | 'timestamp';

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

/**
 * Compiles a filter and a visibility into clauses. Inbox names in the filter match exactly, or by
 * prefix when they end in `*`, like types; the visibility's inbox patterns apply on top.
 */
export function compileFilter(
  filter: EventFilter | null | undefined,
  visibility: Visibility,
): Clause[] {
  const f = filter ?? {};
  const clauses: (Clause | null)[] = [
    listClause('inbox', f.inboxes),
    listClause('inbox', visibility.inboxes),
    listClause('type', f.types),
    listClause('severity', f.severities),
    listClause('category', f.categories),
    listClause('action', f.actions),
    equalsClause('resourceType', f.resourceType),
    equalsClause('resourceId', f.resourceId),
    equalsClause('actor', f.actor),
    equalsClause('source', f.source),
    equalsClause('correlationId', f.correlationId),
    equalsClause('parentId', f.parentId),
  ];
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
  if (f.since != null || f.until != null) {
    clauses.push({ kind: 'range', field: 'timestamp', gte: f.since ?? null, lt: f.until ?? null });
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

/** Reads the value a clause tests from an event. */
export function fieldValue(event: NewEvent, field: FilterField): string | number | null {
  switch (field) {
    case 'resourceType':
      return event.resource?.type ?? null;
    case 'resourceId':
      return event.resource?.id ?? null;
    default:
      return event[field];
  }
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
