/**
 * Server-Sent Events connections over `node:http`: headers that disable buffering and
 * compression, the `retry:` hint, the slow-consumer policy of each connection, and one keepalive
 * timer for every open connection. The frames themselves are in `sse-frames.ts`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { KEEPALIVE_FRAME, retryFrame } from '../sse-frames.js';
import type { QueueWatch } from '../stream/types.js';

/** Options shared by every SSE connection of an instance. */
export interface SseOptions {
  /** Interval of the `:` keepalive comment, ms. */
  keepaliveMs: number;
  /** The `retry:` hint sent when a stream opens, ms. */
  retryMs: number;
  /** A fresh slow-consumer policy for each connection (the stream engine's `watchQueue`). */
  watchQueue: () => QueueWatch;
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
  /** Bytes waiting to be sent on it; 0 once it ended. */
  queueBytes(): number;
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
  /** Ends every connection and stops the timer. */
  close(): void;
}

/** Creates the registry of SSE connections for one instance. */
export function createSseRegistry(options: SseOptions): SseRegistry {
  const open = new Set<SseConnection>();
  const timer = setInterval(() => {
    for (const conn of open) conn.write(KEEPALIVE_FRAME);
  }, options.keepaliveMs);
  timer.unref();

  return {
    open(req, res, headers = {}) {
      const callbacks: (() => void)[] = [];
      const overflowCallbacks: (() => void)[] = [];
      let closed = false;
      const watch = options.watchQueue();
      const conn: SseConnection = {
        write(frame) {
          if (closed) return;
          // write() returning false only means the socket buffer is full; the frame is queued in
          // the response. The queue is bounded by the slow-consumer policy instead of growing
          // with a slow reader.
          const wasFull = res.writableNeedDrain;
          if (res.write(frame)) return;
          if (watch.wrote(res.writableLength, wasFull)) {
            for (const cb of overflowCallbacks.splice(0)) cb();
          }
        },
        queueBytes: () => (res.writableEnded || res.destroyed ? 0 : res.writableLength),
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
          overflowCallbacks.push(callback);
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
      res.on('drain', () => watch.drained());
      res.writeHead(200, sseHeaders(headers));
      res.write(retryFrame(options.retryMs));
      open.add(conn);
      return conn;
    },
    get size() {
      return open.size;
    },
    close() {
      clearInterval(timer);
      for (const conn of [...open]) conn.end();
    },
  };
}
