/**
 * The write side of the SQLite store: one append transaction on a connection, shared by the
 * writer thread (`sqlite-writer.ts`) and the in-process path of `:memory:` databases. Its result
 * is compact (sequences and the rows that existed already), so it crosses threads cheaply; the
 * store turns it into outcomes with {@link toOutcomes}.
 */
import type Database from 'better-sqlite3';
import { ConflictError } from '../errors.js';
import type { NewEvent, StoredEvent } from '../events/types.js';
import {
  bindEvent,
  EVENT_COLUMN_COUNT,
  EVENT_COLUMN_LIST,
  storedEvent,
  toStoredEvent,
  type EventRow,
} from './columns.js';
import type { AppendOutcome } from './types.js';

/** What one append did, event by event. */
export interface AppendResult {
  /** The `received_at` of the events it created. */
  receivedAt: number;
  /**
   * Per event, in order: its new sequence when it was created, minus the sequence of the stored
   * event it repeats otherwise (an idempotent retry, or an id given twice in the batch).
   */
  seqs: number[];
  /** The events of the batch that were stored before it, as read. */
  rows: EventRow[];
}

/**
 * The error of an id reused in its inbox with other content, from the store `kind`. It names only
 * the publisher's own inbox: ids are scoped to their inbox, so other inboxes never conflict.
 */
export function conflictError(kind: string, e: NewEvent): ConflictError {
  return new ConflictError(
    `[store:${kind}] event id "${e.id}" already exists in inbox "${e.inbox}" with different ` +
      'content: use a new id, or resend exactly the same event',
    { details: { id: e.id, inbox: e.inbox } },
  );
}

/** The idempotency key of an event: its id within its inbox (inbox names hold no space). */
export const idKey = (inbox: string, id: string): string => `${inbox} ${id}`;

/** Groups `rows` by id, in the order of `ids` (each id its own copy), keeping the row order. */
export function groupByIds(ids: readonly string[], rows: readonly EventRow[]): StoredEvent[][] {
  const groups = new Map<string, StoredEvent[]>();
  for (const row of rows) {
    let group = groups.get(row.id);
    if (!group) groups.set(row.id, (group = []));
    group.push(toStoredEvent(row));
  }
  return ids.map((id) => [...(groups.get(id) ?? [])]);
}

/** Columns bound per inserted event: the event's, then `received_at`. */
const COLUMNS = EVENT_COLUMN_COUNT + 1;
/** Events inserted by one multi-row statement (COLUMNS × ROWS stays under SQLite's 999 params). */
const ROWS = Math.min(50, Math.floor(999 / COLUMNS));

/** `INSERT INTO events` with `rows` rows of values. */
function insertSql(rows: number): string {
  const row = `(${new Array<string>(COLUMNS).fill('?').join(', ')})`;
  const columns = EVENT_COLUMN_LIST.map((c) => c.name).join(', ');
  return `INSERT INTO events (${columns}, received_at)
     VALUES ${new Array<string>(rows).fill(row).join(', ')}`;
}

/** Writes the columns of `e` into `params` from `at` on, in the order of {@link insertSql}. */
function bindRow(params: unknown[], at: number, e: NewEvent, receivedAt: number): void {
  bindEvent(params, at, e);
  params[at + EVENT_COLUMN_COUNT] = receivedAt;
}

/** How a batch splits against the rows already stored with its ids (see {@link planAppend}). */
export interface AppendPlan {
  /** Indexes of the events to insert, in order. */
  inserts: number[];
  /**
   * One entry per event: filled in for the events already stored (minus their seq), left for
   * the caller to fill with the sequences of the inserted ones.
   */
  seqs: number[];
  /** Pairs: the index of a repeat of an id new in this batch, then of its first occurrence. */
  repeats: number[];
}

/**
 * Splits `events` into new ones, ones already stored (`found`, same inbox and id, same
 * fingerprint) and repeats of an id new in the batch, by {@link idKey}: the same id in another
 * inbox is another event. Shared by every store, so idempotency behaves the same everywhere.
 * @throws the error of `conflict` for an id stored (or repeated) in its inbox with other content.
 */
export function planAppend(
  events: readonly NewEvent[],
  found: readonly EventRow[],
  conflict: (e: NewEvent) => Error,
): AppendPlan {
  /** Stored rows by key, then the index in `events` of each key new in this batch. */
  const known = new Map<string, EventRow | number>();
  for (const row of found) known.set(idKey(row.inbox, row.id), row);
  const inserts: number[] = [];
  const repeats: number[] = [];
  const seqs: number[] = new Array<number>(events.length);
  for (let i = 0; i < events.length; i++) {
    const e = events[i] as NewEvent;
    const key = idKey(e.inbox, e.id);
    const seen = known.get(key);
    if (seen === undefined) {
      known.set(key, i);
      inserts.push(i);
      continue;
    }
    const first = typeof seen === 'number' ? (events[seen] as NewEvent) : seen;
    if (first.fingerprint !== e.fingerprint) throw conflict(e);
    if (typeof seen === 'number') repeats.push(i, seen);
    else seqs[i] = -seen.seq;
  }
  return { inserts, seqs, repeats };
}

/** Gives each repeat of an id new in the batch the (negated) sequence of its first occurrence. */
export function fillRepeats(seqs: number[], repeats: readonly number[]): void {
  for (let r = 0; r < repeats.length; r += 2) {
    seqs[repeats[r] as number] = -(seqs[repeats[r + 1] as number] as number);
  }
}

/**
 * Prepares the append transaction on `db`: it looks the ids up, refuses a reused id with other
 * content (a {@link ConflictError}, and nothing of the batch is stored), and inserts the new
 * events in order, committing before it returns.
 *
 * New events are inserted {@link ROWS} per statement (the rest one by one). Within the
 * transaction no one else writes, and AUTOINCREMENT gives the rows of a statement the next
 * sequences in turn, so the `k` rows of a statement whose last row got `last` got
 * `last - k + 1 … last`.
 */
export function createAppender(
  db: Database.Database,
): (events: readonly NewEvent[]) => AppendResult {
  const insertOne = db.prepare<unknown[]>(insertSql(1));
  const insertMany = db.prepare<unknown[]>(insertSql(ROWS));
  const one: unknown[] = new Array<unknown>(COLUMNS);
  const many: unknown[] = new Array<unknown>(COLUMNS * ROWS);
  /**
   * The stored events among a list of `[inbox, id]` pairs: one query, whatever their number,
   * through the unique index on (id, inbox). Other inboxes are never read.
   */
  const byKeys = db.prepare<[string], EventRow>(
    `SELECT e.* FROM json_each(?) k
     JOIN events e ON e.id = k.value ->> 1 AND e.inbox = k.value ->> 0`,
  );
  const conflict = (e: NewEvent) => conflictError('sqlite', e);
  const transaction = db.transaction((events: readonly NewEvent[]): AppendResult => {
    const receivedAt = Date.now();
    // Look the keys up first, all in one query (an INSERT that hits the unique key would still
    // burn an AUTOINCREMENT sequence); keys repeated within the batch are found in `known` too.
    // Ids the server just generated cannot be stored yet.
    const given: [string, string][] = [];
    for (const e of events) if (!e.generatedId) given.push([e.inbox, e.id]);
    const rows = given.length === 0 ? [] : byKeys.all(JSON.stringify(given));
    const { inserts, seqs, repeats } = planAppend(events, rows, conflict);
    for (let done = 0; done < inserts.length;) {
      const k = inserts.length - done >= ROWS ? ROWS : 1;
      const params = k === ROWS ? many : one;
      for (let j = 0; j < k; j++) {
        bindRow(params, j * COLUMNS, events[inserts[done + j] as number] as NewEvent, receivedAt);
      }
      const last = Number((k === ROWS ? insertMany : insertOne).run(params).lastInsertRowid);
      for (let j = 0; j < k; j++) seqs[inserts[done + j] as number] = last - k + 1 + j;
      done += k;
    }
    fillRepeats(seqs, repeats);
    return { receivedAt, seqs, rows };
  });
  return (events) => transaction.immediate(events);
}

/** The outcomes of an append of `events` from its {@link AppendResult}. */
export function toOutcomes(events: readonly NewEvent[], result: AppendResult): AppendOutcome[] {
  const { receivedAt, seqs } = result;
  const bySeq = new Map<number, StoredEvent>();
  for (const row of result.rows) bySeq.set(row.seq, toStoredEvent(row));
  const outcomes: AppendOutcome[] = new Array<AppendOutcome>(events.length);
  for (let i = 0; i < events.length; i++) {
    const seq = seqs[i] as number;
    if (seq > 0) {
      const event = storedEvent(events[i] as NewEvent, seq, receivedAt);
      bySeq.set(seq, event);
      outcomes[i] = { event, created: true };
    } else {
      outcomes[i] = { event: bySeq.get(-seq) as StoredEvent, created: false };
    }
  }
  return outcomes;
}
