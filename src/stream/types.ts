/**
 * The stream engine's port: what a transport hands the engine (a prepared operation, a sink) and
 * what it gets back (a handle to stop or fail the operation). The engine owns everything a live
 * stream does whatever carries it: authorization, the stream spec, grouping (execute once per
 * group, encode once per event and encoding), the per-client limit, presence, cut-offs, token
 * expiry and the slow-consumer policy. A transport owns only its protocol: framing, ids, sockets.
 *
 * Nothing here knows HTTP, Server-Sent Events or WebSocket.
 */
import type { Principal } from '../auth/principal.js';
import type { QueueLimits, TidingsError } from '../errors.js';
import type { GraphQLParams, PreparedOperation } from './operation.js';

/** How a stream is carried: the two graphql-sse modes, or a graphql-ws socket. */
export type StreamMode = 'distinct' | 'single' | 'websocket';

/** Who an open stream belongs to, for ending streams by subject, client or token. */
export interface StreamOwner {
  principal: Principal;
  /** The client id the stream asked for (`eventStream(clientId:)`), if any. */
  clientId: string | null;
}

/** An open stream, as {@link StreamControl.list} describes it. */
export interface OpenStreamInfo {
  /**
   * Made up when it opened (a random prefix per instance, a dash, a counter in base 36); its log
   * lines carry it as `streamId`.
   */
  id: string;
  mode: StreamMode;
  /** The caller's subject; null without auth. */
  subject: string | null;
  /** The client id the stream asked for, else the caller's; null when neither is set. */
  clientId: string | null;
  /** The inboxes it named (names and `prefix*` patterns); null: every inbox the caller may read. */
  inboxes: readonly string[] | null;
  /** When it opened, epoch ms. */
  since: number;
  /** Frames of events written to it (replayed and live). */
  eventsDelivered: number;
  /** Bytes waiting to be sent on its connection (one connection may carry several operations). */
  queueBytes: number;
}

/** Ends and lists the open streams of this instance, whatever transport carries them. */
export interface StreamControl {
  /** Ends every open stream whose owner matches, with `error` then `complete`; returns how many. */
  end(match: (owner: StreamOwner) => boolean, error: TidingsError): number;
  /** Open streams, with their owners. */
  owners(): StreamOwner[];
  /** Open streams, described. */
  list(): OpenStreamInfo[];
}

/**
 * How a transport turns one operation's results into bytes. The engine serialises each result to
 * JSON once per group; the encoder wraps that text into the transport's frame.
 */
export interface FrameEncoder {
  /**
   * Operations whose encoders share a non-null key turn the same result into the same bytes (a
   * graphql-sse distinct stream: no operation id in the frame; graphql-ws: the body after the
   * prefix its socket writes), so the group encodes each event once for all of them and they
   * write the very same Buffer. `null` when the frame names the operation (graphql-sse's
   * single-connection mode): the result's JSON is still shared.
   */
  readonly shareKey: string | null;
  /**
   * A `next` frame carrying `payload` (a serialised `ExecutionResult`). `cursor` is the event's
   * cursor, the history horizon of a gap signal, or `null` for a result that is not an event.
   */
  next(payload: string, cursor: string | null): string | Buffer;
  /** The frame that ends the operation. */
  complete(): string | Buffer;
}

/** Where one operation's frames go: a transport's connection, seen by the engine. */
export interface StreamSink {
  readonly encoder: FrameEncoder;
  /** Writes a frame; ignored once the connection closed. */
  write(frame: string | Buffer): void;
  /**
   * A promise while the connection's send buffer is full (resolved once it drained or closed);
   * `null` when the client keeps up. Replays wait on it, so they are paced by the reader.
   */
  drained(): Promise<void> | null;
  /** Called once, after the operation's last frame (its `complete`) was written. */
  done(): void;
  /** Bytes waiting to be sent on the connection (or kept for one yet to open), for presence. */
  queueBytes(): number;
}

/** Who runs an operation, and how it is carried: for presence, limits and logs. */
export interface StreamOpener {
  principal: Principal;
  /** The request that opened it, for its log lines; `null` when there is none. */
  reqId: string | null;
  mode: StreamMode;
}

/** A running operation (a query run once, or a live stream). */
export interface RunningOperation {
  /** Stops it silently: the client asked, or the connection is gone. No frame is written. */
  stop(reason?: 'client_gone' | 'shutdown'): void;
  /** Ends it with an error the client sees (e.g. `SLOW_CONSUMER`), then its `complete`. */
  fail(error: TidingsError): void;
}

/** The slow-consumer limits of every connection of an instance. */
export interface QueueLimitsOptions {
  /**
   * Bytes a connection may have waiting to be sent before it counts as behind.
   * @default 1048576
   */
  maxQueueBytes?: number;
  /**
   * Frames a connection may have waiting once its socket buffer is full.
   * @default 10000
   */
  maxQueueEvents?: number;
}

/**
 * The slow-consumer policy of one connection. A transport tells it after each write how much
 * waits to be sent; it says when the connection became a slow consumer (then every operation
 * on it should `fail` with `SlowConsumerError`, which the client resumes from).
 */
export interface QueueWatch {
  /**
   * After a write that did not go straight to the socket: `queuedBytes` wait to be sent, and
   * `wasFull` says the socket buffer was already full before it. Returns `true` once, when the
   * connection became a slow consumer.
   */
  wrote(queuedBytes: number, wasFull: boolean): boolean;
  /** The connection's send buffer drained. */
  drained(): void;
}

/** How a transport asks for an operation to be prepared. */
export interface PrepareRequest {
  /** The transport's verb: `GET` refuses mutations; any other value allows them. */
  method: string;
  /** A cursor to resume after when the subscription names no `after` (`Last-Event-ID`). */
  resumeAfter: string | null;
  principal: Principal;
}

/** The stream engine of one instance, shared by every transport. */
export interface StreamService {
  /** Parses (cached), validates and authorizes an operation; never throws. */
  prepare(params: GraphQLParams, request: PrepareRequest): PreparedOperation;
  /**
   * Runs a prepared operation, writing its frames to `sink` until it completes or is stopped:
   * an invalid one writes its errors then `complete`; a query or mutation its one result then
   * `complete`; an `eventStream` subscription every event, live, until it ends.
   */
  run(prepared: PreparedOperation, sink: StreamSink, opener: StreamOpener): RunningOperation;
  /** A fresh slow-consumer policy for one connection. */
  watchQueue(): QueueWatch;
  /** The slow-consumer limits, for `SlowConsumerError`. */
  readonly limits: QueueLimits;
  /** The open streams, to list or end them. */
  readonly control: StreamControl;
}
