/**
 * The write side of the SQLite store: one append transaction on a connection, shared by the
 * writer thread (`sqlite-writer.ts`) and the in-process path of `:memory:` databases. Its result
 * is compact (sequences and the rows that existed already), so it crosses threads cheaply; the
 * store turns it into outcomes with {@link toOutcomes}.
 */
import type Database from 'better-sqlite3';
import { ConflictError } from '../errors.js';
import { encodeCursor } from '../events/cursor.js';
import type { NewEvent, Severity, StoredEvent } from '../events/types.js';
import type { AppendOutcome } from './types.js';

/** A row of `events` as better-sqlite3 returns it. */
export interface EventRow {
  seq: number;
  id: string;
  type: string;
  inbox: string;
  client_id: string | null;
  ts: number;
  received_at: number;
  message: string | null;
  body: string | null;
  severity: string;
  category: string | null;
  action: string | null;
  resource_type: string | null;
  resource_id: string | null;
  actor: string | null;
  source: string | null;
  parent_id: string | null;
  correlation_id: string | null;
  fingerprint: string;
}

/** Converts a row to the event it stores. */
export function toStoredEvent(row: EventRow): StoredEvent {
  return {
    id: row.id,
    type: row.type,
    inbox: row.inbox,
    clientId: row.client_id,
    timestamp: row.ts,
    message: row.message,
    body: row.body === null ? null : (JSON.parse(row.body) as unknown),
    severity: row.severity as Severity,
    category: row.category,
    action: row.action,
    resource:
      row.resource_type === null ? null : { type: row.resource_type, id: row.resource_id ?? '' },
    actor: row.actor,
    source: row.source,
    parentId: row.parent_id,
    correlationId: row.correlation_id,
    fingerprint: row.fingerprint,
    seq: row.seq,
    cursor: encodeCursor(row.seq),
    receivedAt: row.received_at,
  };
}

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

/** The error of an id reused with other content. */
export function conflictError(id: string): ConflictError {
  return new ConflictError(
    `[store:sqlite] event id "${id}" already exists with different content: use a new ` +
      'id, or resend exactly the same event',
    { details: { id } },
  );
}

/**
 * Prepares the append transaction on `db`: it looks the ids up, refuses a reused id with other
 * content (a {@link ConflictError}, and nothing of the batch is stored), and inserts the new
 * events in order, committing before it returns.
 */
export function createAppender(
  db: Database.Database,
): (events: readonly NewEvent[]) => AppendResult {
  const insert = db.prepare<unknown[]>(
    `INSERT INTO events (id, type, inbox, client_id, ts, received_at, message, body, severity,
       category, action, resource_type, resource_id, actor, source, parent_id, correlation_id,
       fingerprint)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  /** The stored events among a list of ids: one query, whatever the number of ids. */
  const byIds = db.prepare<[string], EventRow>(
    'SELECT * FROM events WHERE id IN (SELECT value FROM json_each(?))',
  );
  const transaction = db.transaction((events: readonly NewEvent[]): AppendResult => {
    const receivedAt = Date.now();
    // Look the ids up first, all in one query (an INSERT that hits the unique id would still burn
    // an AUTOINCREMENT sequence); ids repeated within the batch are found in `known` too.
    const rows = byIds.all(JSON.stringify(events.map((e) => e.id)));
    const known = new Map<string, { seq: number; fingerprint: string }>();
    for (const row of rows) known.set(row.id, row);
    const seqs: number[] = new Array<number>(events.length);
    for (let i = 0; i < events.length; i++) {
      const e = events[i] as NewEvent;
      const existing = known.get(e.id);
      if (existing) {
        if (existing.fingerprint !== e.fingerprint) throw conflictError(e.id);
        seqs[i] = -existing.seq;
        continue;
      }
      const result = insert.run(
        e.id,
        e.type,
        e.inbox,
        e.clientId,
        e.timestamp,
        receivedAt,
        e.message,
        e.body === null ? null : (JSON.stringify(e.body) ?? null),
        e.severity,
        e.category,
        e.action,
        e.resource === null ? null : e.resource.type,
        e.resource === null ? null : e.resource.id,
        e.actor,
        e.source,
        e.parentId,
        e.correlationId,
        e.fingerprint,
      );
      const seq = Number(result.lastInsertRowid);
      known.set(e.id, { seq, fingerprint: e.fingerprint });
      seqs[i] = seq;
    }
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
      // `e.body` is already the JSON value as it reads back (NewEvent.body's contract), so a
      // fresh event equals the same event read later without parsing the text again.
      const e = events[i] as NewEvent;
      const event: StoredEvent = {
        id: e.id,
        type: e.type,
        inbox: e.inbox,
        clientId: e.clientId,
        timestamp: e.timestamp,
        message: e.message,
        body: e.body,
        severity: e.severity,
        category: e.category,
        action: e.action,
        resource: e.resource,
        actor: e.actor,
        source: e.source,
        parentId: e.parentId,
        correlationId: e.correlationId,
        fingerprint: e.fingerprint,
        seq,
        cursor: encodeCursor(seq),
        receivedAt,
      };
      bySeq.set(seq, event);
      outcomes[i] = { event, created: true };
    } else {
      outcomes[i] = { event: bySeq.get(-seq) as StoredEvent, created: false };
    }
  }
  return outcomes;
}
