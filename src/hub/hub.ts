/**
 * The hub: the registry of open streams on this instance. It indexes streams by inbox and by
 * client so that dispatching an event costs the streams it can match, not every open stream, and
 * it runs each stream's replay-then-live switch so that no event is lost or repeated across it.
 */
import { CursorError, StoreError, TidingsError } from '../errors.js';
import { matchesClauses, type Clause } from '../events/filter.js';
import type { StoredEvent } from '../events/types.js';
import type { EventStore } from '../store/types.js';

/** What a stream wants, already compiled and authorised. */
export interface StreamSpec {
  /** The AND of the stream's filter, its targeting and the reader's visibility. */
  clauses: readonly Clause[];
  /**
   * Exact inbox names the stream reads, used for indexing only (the clauses decide). `null` when
   * it reads every inbox or uses patterns.
   */
  inboxes: readonly string[] | null;
  /** The client whose targeted events this stream receives; `null` for broadcast events only. */
  clientId: string | null;
  /** Replay stored events after this sequence before going live; `null` to start live. */
  afterSeq: number | null;
  /**
   * The inboxes the stream named (names and `prefix*` patterns), to list it; `null` or absent
   * when it named none and reads every inbox it may.
   */
  requestedInboxes?: readonly string[] | null;
}

/**
 * Part of a replay that retention removed before it could be read: the events with a sequence in
 * `(afterSeq, purgedThrough]` are gone. The stream goes on after `purgedThrough`.
 */
export interface HistoryGap {
  /** Where the replay was asked to start (exclusive). */
  afterSeq: number;
  /** The retention horizon: the last sequence removed. */
  purgedThrough: number;
}

/** Where a stream's events go. Calls arrive in cursor order, never after `end`. */
export interface StreamSink {
  /** One event, in cursor order. */
  deliver(event: StoredEvent): void;
  /**
   * The replay starts in history that retention already removed: an explicit signal, never a
   * silent partial replay. Comes before any event after the gap.
   */
  gap(gap: HistoryGap): void;
  /** The stream ended on the hub's side (replay failure, shutdown); no call follows. */
  end(error: TidingsError | null): void;
  /**
   * During a replay, asked after each event: a promise when the client should catch up before
   * more is read from the store (the connection's send buffer is full), `null` to go on. Replays
   * are thereby paced by the reader, so a long one never piles up in memory.
   */
  backlog?(): Promise<void> | null;
}

/** A registered stream. */
export interface HubStream {
  /** Sequence of the last event delivered (or the replay start). */
  readonly lastSeq: number;
  /** Events handed to the sink so far, replayed and live (counted on, after the stream closed). */
  readonly delivered: number;
  /** Removes the stream; no further calls reach its sink. */
  close(): void;
}

/** Options of {@link createHub}. */
export interface HubOptions {
  /** Where replays read from. */
  store: EventStore;
  /**
   * Events read per replay query.
   * @default 500
   */
  replayBatch?: number;
  /** Called with errors the hub cannot hand to a sink (a sink that threw). */
  onError?: (err: unknown) => void;
}

/** The hub of one instance. */
export interface Hub {
  /** Registers a stream; replay (if asked) starts at once, live events are held until it ends. */
  open(spec: StreamSpec, sink: StreamSink): HubStream;
  /** Delivers newly stored events, in cursor order, to the streams they match. */
  dispatch(events: readonly StoredEvent[]): void;
  /** Number of open streams. */
  readonly size: number;
  /** Ends every stream with `reason` (or cleanly when null) and refuses new ones. */
  closeAll(reason: TidingsError | null): void;
}

interface Entry extends HubStream {
  spec: StreamSpec;
  sink: StreamSink;
  lastSeq: number;
  delivered: number;
  /** Live events that arrived while the replay was running; null once live. */
  held: StoredEvent[] | null;
  closed: boolean;
}

/** Adds `value` to the set stored under `key`, creating it. */
function addTo<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(value);
}

function removeFrom<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  const set = map.get(key);
  if (set?.delete(value) && set.size === 0) map.delete(key);
}

/** Creates the hub of one instance. */
export function createHub(options: HubOptions): Hub {
  const { store } = options;
  const replayBatch = options.replayBatch ?? 500;
  const onError = options.onError ?? (() => {});
  /** Streams reading broadcast events of one exact inbox. */
  const broadcastByInbox = new Map<string, Set<Entry>>();
  /** Streams reading broadcast events of every inbox (or of inbox patterns). */
  const broadcastAnyInbox = new Set<Entry>();
  /** Streams that receive the targeted events of one client. */
  const targetedByClient = new Map<string, Set<Entry>>();
  const all = new Set<Entry>();
  let shutDown: TidingsError | null | undefined;

  function index(entry: Entry, add: boolean): void {
    const { inboxes, clientId } = entry.spec;
    if (inboxes === null) {
      if (add) broadcastAnyInbox.add(entry);
      else broadcastAnyInbox.delete(entry);
    } else {
      for (const inbox of inboxes) {
        if (add) addTo(broadcastByInbox, inbox, entry);
        else removeFrom(broadcastByInbox, inbox, entry);
      }
    }
    if (clientId !== null) {
      if (add) addTo(targetedByClient, clientId, entry);
      else removeFrom(targetedByClient, clientId, entry);
    }
  }

  function unregister(entry: Entry): void {
    if (entry.closed) return;
    entry.closed = true;
    entry.held = null;
    all.delete(entry);
    index(entry, false);
  }

  function end(entry: Entry, error: TidingsError | null): void {
    if (entry.closed) return;
    unregister(entry);
    try {
      entry.sink.end(error);
    } catch (err) {
      onError(err);
    }
  }

  /** Hands one event to a stream if it is new to it and matches. */
  function offer(entry: Entry, event: StoredEvent): void {
    if (event.seq <= entry.lastSeq || !matchesClauses(event, entry.spec.clauses)) return;
    entry.lastSeq = event.seq;
    entry.delivered++;
    try {
      entry.sink.deliver(event);
    } catch (err) {
      onError(err);
    }
  }

  async function replay(entry: Entry): Promise<void> {
    try {
      const newest = await store.lastSeq();
      if (entry.lastSeq > newest) {
        throw new CursorError(
          `[hub] the cursor points past the newest stored event (${newest}): it was not issued by ` +
            'this store; resume without a cursor, or with one received from this server',
        );
      }
      for (;;) {
        if (entry.closed) return;
        const { events, purgedThrough } = await store.readAfter(
          entry.lastSeq,
          entry.spec.clauses,
          replayBatch,
        );
        if (entry.closed) return;
        if (purgedThrough > entry.lastSeq) {
          // Read in the same snapshot as the horizon, so every event after it is in `events`.
          const gap: HistoryGap = { afterSeq: entry.lastSeq, purgedThrough };
          entry.lastSeq = purgedThrough;
          try {
            entry.sink.gap(gap);
          } catch (err) {
            onError(err);
          }
        }
        for (const event of events) {
          if (entry.closed) return;
          offer(entry, event);
          const wait = entry.sink.backlog?.();
          if (wait) await wait;
        }
        if (events.length < replayBatch) break;
      }
      // Switch to live: whatever was dispatched during the replay and is newer than the last
      // replayed event goes out now, in order; older ones were part of the replay.
      const held = entry.held ?? [];
      entry.held = null;
      for (const event of held) {
        if (entry.closed) return;
        offer(entry, event);
      }
    } catch (err) {
      end(
        entry,
        err instanceof TidingsError
          ? err
          : new StoreError(
              `[hub] replay from the store failed: ${String(err)}; resume from the last cursor`,
              {
                cause: err,
              },
            ),
      );
    }
  }

  return {
    open(spec, sink) {
      const entry: Entry = {
        spec,
        sink,
        lastSeq: spec.afterSeq ?? 0,
        delivered: 0,
        held: spec.afterSeq === null ? null : [],
        closed: false,
        close: () => unregister(entry),
      };
      if (shutDown !== undefined) {
        entry.closed = true;
        queueMicrotask(() => {
          try {
            sink.end(shutDown ?? null);
          } catch (err) {
            onError(err);
          }
        });
        return entry;
      }
      all.add(entry);
      index(entry, true);
      if (entry.held) void replay(entry);
      return entry;
    },
    dispatch(events) {
      for (const event of events) {
        const candidates =
          event.clientId === null
            ? [broadcastByInbox.get(event.inbox), broadcastAnyInbox]
            : [targetedByClient.get(event.clientId)];
        for (const set of candidates) {
          if (!set) continue;
          for (const entry of set) {
            if (entry.held) entry.held.push(event);
            else offer(entry, event);
          }
        }
      }
    },
    get size() {
      return all.size;
    },
    closeAll(reason) {
      shutDown = reason;
      for (const entry of [...all]) end(entry, reason);
    },
  };
}
