/**
 * Server-Sent Events framing and connections: headers that disable buffering and compression,
 * the `retry:` hint, frames with `id:` lines, and one keepalive timer for every open connection.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { QueueLimits } from '../errors.js';

/** Options shared by every SSE connection of an instance. */
export interface SseOptions {
  /** Interval of the `:` keepalive comment, ms. */
  keepaliveMs: number;
  /** The `retry:` hint sent when a stream opens, ms. */
  retryMs: number;
  /**
   * Bytes a connection may have waiting to be sent. A connection that stays above this or
   * `maxQueueEvents` for {@link SLOW_CONSUMER_GRACE_MS}, or goes above four times either, is a
   * slow consumer.
   * @default 1048576
   */
  maxQueueBytes?: number;
  /**
   * Frames (events) a connection may have waiting to be sent once its socket buffer is full.
   * @default 10000
   */
  maxQueueEvents?: number;
}

/**
 * How long a connection may stay above `maxQueueBytes` without draining. A burst larger than the
 * limit (a big batch, a replay) is not slowness as long as the client keeps reading.
 */
export const SLOW_CONSUMER_GRACE_MS = 1000;

/** A `next` frame; `cursor` becomes the SSE `id:` so `EventSource` can resume with `Last-Event-ID`. */
export function nextFrame(cursor: string | null, data: string): string {
  return cursor === null
    ? `event: next\ndata: ${data}\n\n`
    : `id: ${cursor}\nevent: next\ndata: ${data}\n\n`;
}

/**
 * A `complete` frame. In distinct-connections mode the `data:` field is empty but present, since
 * `EventSource` ignores events without one.
 */
export function completeFrame(operationId: string | null): string {
  return operationId === null
    ? 'event: complete\ndata:\n\n'
    : `event: complete\ndata: ${JSON.stringify({ id: operationId })}\n\n`;
}

/**
 * Whether an `Accept` header asks for an event stream. Media types are case-insensitive, so
 * `Text/Event-Stream` is one too.
 */
export function acceptsEventStream(accept: string | undefined): boolean {
  return accept !== undefined && /text\/event-stream/i.test(accept);
}

/** Headers of every event stream response. */
export function sseHeaders(extra: Record<string, string> = {}): Record<string, string> {
  return {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    'x-accel-buffering': 'no',
    connection: 'keep-alive',
    ...extra,
  };
}

/** One open event stream response. */
export interface SseConnection {
  /**
   * Writes a frame; ignored once closed. When more than `maxQueueBytes` wait to be sent, the
   * overflow callbacks run (once).
   */
  write(frame: string | Buffer): void;
  /** Ends the response (idempotent). */
  end(): void;
  /** Whether the connection has ended, by either side. */
  readonly closed: boolean;
  /** Registers a callback for when the connection ends, by either side. */
  onClose(callback: () => void): void;
  /** A promise resolved once the send buffer drained (or the connection ended); null if not full. */
  drained(): Promise<void> | null;
  /**
   * Registers a callback for when the client reads too slowly: the frames or bytes waiting to be
   * sent passed the limits. The callback should end the stream with a resumable error.
   */
  onOverflow(callback: () => void): void;
}

/** Opens SSE connections and keeps them alive with one shared timer. */
export interface SseRegistry {
  /** Starts an event stream on `res`: writes the headers and the `retry:` hint. */
  open(req: IncomingMessage, res: ServerResponse, headers?: Record<string, string>): SseConnection;
  /** Number of open connections. */
  readonly size: number;
  /** The slow-consumer limits. */
  readonly limits: QueueLimits;
  /** Ends every connection and stops the timer. */
  close(): void;
}

/** Creates the registry of SSE connections for one instance. */
export function createSseRegistry(options: SseOptions): SseRegistry {
  const limits: QueueLimits = {
    maxBytes: options.maxQueueBytes ?? 1024 * 1024,
    maxEvents: options.maxQueueEvents ?? 10_000,
  };
  const open = new Set<SseConnection>();
  const timer = setInterval(() => {
    for (const conn of open) conn.write(':\n\n');
  }, options.keepaliveMs);
  timer.unref();

  return {
    open(req, res, headers = {}) {
      const callbacks: (() => void)[] = [];
      let overflowCallbacks: (() => void)[] | null = [];
      let closed = false;
      /** When the queue went above a limit without draining since; 0 when it is below. */
      let overSince = 0;
      /** Frames written since the socket buffer filled up (reset when it drains). */
      let queuedFrames = 0;
      const overflow = () => {
        const callbacks = overflowCallbacks ?? [];
        overflowCallbacks = null;
        for (const cb of callbacks) cb();
      };
      const conn: SseConnection = {
        write(frame) {
          if (closed) return;
          // write() returning false only means the socket buffer is full; the frame is queued in
          // the response. The queue is bounded here instead of growing with a slow reader.
          const needDrain = res.writableNeedDrain;
          if (res.write(frame) || !overflowCallbacks) return;
          if (needDrain) queuedFrames++;
          const bytes = res.writableLength;
          if (bytes <= limits.maxBytes && queuedFrames <= limits.maxEvents) return;
          const now = Date.now();
          if (overSince === 0) overSince = now;
          if (
            bytes > 4 * limits.maxBytes ||
            queuedFrames > 4 * limits.maxEvents ||
            now - overSince > SLOW_CONSUMER_GRACE_MS
          ) {
            overflow();
          }
        },
        drained() {
          if (closed || !res.writableNeedDrain) return null;
          return new Promise<void>((resolve) => {
            const done = () => {
              res.off('drain', done);
              res.off('close', done);
              resolve();
            };
            res.on('drain', done);
            res.on('close', done);
          });
        },
        end() {
          if (closed) return;
          res.end();
          finish();
        },
        get closed() {
          return closed;
        },
        onClose(callback) {
          if (closed) callback();
          else callbacks.push(callback);
        },
        onOverflow(callback) {
          overflowCallbacks?.push(callback);
        },
      };
      const finish = () => {
        if (closed) return;
        closed = true;
        open.delete(conn);
        for (const cb of callbacks.splice(0)) cb();
      };
      req.socket.setNoDelay(true);
      req.socket.setKeepAlive(true);
      res.on('close', finish);
      res.on('drain', () => {
        overSince = 0;
        queuedFrames = 0;
      });
      res.writeHead(200, sseHeaders(headers));
      res.write(`retry: ${options.retryMs}\n\n`);
      open.add(conn);
      return conn;
    },
    get size() {
      return open.size;
    },
    limits,
    close() {
      clearInterval(timer);
      for (const conn of [...open]) conn.end();
    },
  };
}
