/**
 * The error classes of Tidings. Every error has a stable machine-readable `code` (surfaced as
 * `extensions.code` in GraphQL responses), a message that says what to do, and the `cause` it was
 * raised from, if any. Messages start with the component that raised them: `[store:sqlite] …`.
 */

/** Stable error codes, as seen by clients in `extensions.code`. */
export type TidingsErrorCode =
  | 'BAD_USER_INPUT'
  | 'BAD_CURSOR'
  | 'CONFLICT'
  | 'PAYLOAD_TOO_LARGE'
  | 'BAD_CONFIG'
  | 'STORE_ERROR'
  | 'STORE_FULL'
  | 'STORE_BUSY'
  | 'STORE_UNAVAILABLE'
  | 'BUS_ERROR'
  | 'SHUTTING_DOWN'
  | 'SLOW_CONSUMER'
  | 'HISTORY_GAP'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'HOST_NOT_ALLOWED'
  | 'TOKEN_EXPIRED'
  | 'TOKEN_REVOKED'
  | 'STREAM_ENDED'
  | 'LIMIT_EXCEEDED'
  | 'RATE_LIMITED'
  | 'NOT_FOUND';

/** Base class; `expose` says whether the message is safe to show to a client. */
export class TidingsError extends Error {
  /** Machine-readable code, stable across versions. */
  readonly code: TidingsErrorCode;
  /** Whether clients may see this error's message (otherwise it is masked). */
  readonly expose: boolean;
  /** Extra structured detail for clients, merged into `extensions`. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: TidingsErrorCode,
    message: string,
    options: { cause?: unknown; expose?: boolean; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.expose = options.expose ?? true;
    this.details = options.details ?? {};
  }
}

/** The caller sent something invalid; nothing was changed. */
export class ValidationError extends TidingsError {
  constructor(
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super('BAD_USER_INPUT', message, options);
  }
}

/** A cursor that Tidings did not issue, or that is malformed. */
export class CursorError extends TidingsError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('BAD_CURSOR', message, options);
  }
}

/** An event id was reused with different content. */
export class ConflictError extends TidingsError {
  constructor(
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super('CONFLICT', message, options);
  }
}

/** A configuration value is invalid; start-up stops with this message. */
export class ConfigError extends TidingsError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('BAD_CONFIG', message, options);
  }
}

/** The event store failed; the message is for operators and is masked for clients. */
export class StoreError extends TidingsError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('STORE_ERROR', message, { ...options, expose: false });
  }
}

/**
 * The store cannot take writes for now, for a reason the operator can fix: its disk is full
 * (`STORE_FULL`) or another process holds its file locked (`STORE_BUSY`). Nothing was stored; the
 * message says what to do, and the store takes writes again by itself once the cause is gone.
 */
export class StoreBlockedError extends TidingsError {
  declare readonly code: 'STORE_FULL' | 'STORE_BUSY';
  /**
   * The message for operators (logs, `/readyz`, system events): it may name what clients must
   * not see, such as the file's path. Defaults to `message`.
   */
  readonly operatorMessage: string;
  constructor(
    code: 'STORE_FULL' | 'STORE_BUSY',
    message: string,
    options: { cause?: unknown; operatorMessage?: string } = {},
  ) {
    super(code, message, { cause: options.cause });
    this.operatorMessage = options.operatorMessage ?? message;
  }
}

/**
 * The store did not answer in time (`TIDINGS_STORE_TIMEOUT`) or could not be reached. A write
 * may or may not have been stored: sending it again with the same ids is safe, since a repeated
 * id is stored once. The message is safe to show to clients; the `cause` has the detail.
 */
export class StoreUnavailableError extends TidingsError {
  constructor(
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super('STORE_UNAVAILABLE', message, options);
  }
}

/** The event bus failed; the message is for operators and is masked for clients. */
export class BusError extends TidingsError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('BUS_ERROR', message, { ...options, expose: false });
  }
}

/** The bounds of a stream's send queue (see `TIDINGS_MAX_QUEUE` and `TIDINGS_MAX_QUEUE_BYTES`). */
export interface QueueLimits {
  /** Events waiting to be sent. */
  maxEvents: number;
  /** Bytes waiting to be sent. */
  maxBytes: number;
}

/** A stream's client read too slowly and its queue overflowed; it resumes from its last cursor. */
export class SlowConsumerError extends TidingsError {
  constructor(limits: QueueLimits) {
    super(
      'SLOW_CONSUMER',
      `[transport] the stream fell more than ${limits.maxEvents} events or ${limits.maxBytes} bytes ` +
        'behind and was ended: reconnect and resume from the last cursor you received ' +
        '(TIDINGS_MAX_QUEUE and TIDINGS_MAX_QUEUE_BYTES set the limits)',
      { details: { limitEvents: limits.maxEvents, limitBytes: limits.maxBytes } },
    );
  }
}

/**
 * A stream asked to resume from a point older than the retained history: the events between its
 * cursor and `purgedThrough` were removed by retention. The stream goes on after the gap; this is
 * the explicit signal that something is missing.
 */
export class HistoryGapError extends TidingsError {
  constructor(after: string, purgedThrough: string) {
    super(
      'HISTORY_GAP',
      `[hub] events after cursor ${after} up to ${purgedThrough} were removed by retention ` +
        '(TIDINGS_RETENTION) and cannot be replayed; the stream continues with the oldest retained ' +
        'event. Reload the state you derive from events, or query `events` for what is left',
      { details: { after, purgedThrough } },
    );
  }
}

/** The instance is shutting down: streams end with this resume hint, new publishes get it. */
export class ShuttingDownError extends TidingsError {
  constructor() {
    super(
      'SHUTTING_DOWN',
      '[server] the server is shutting down: reconnect and resume from the last cursor you received',
    );
  }
}

/**
 * The caller could not be authenticated: no token, or one that is malformed, unsigned, wrongly
 * signed, expired, revoked or for another issuer or audience. HTTP 401.
 */
export class AuthenticationError extends TidingsError {
  constructor(
    message: string,
    options: { cause?: unknown; code?: 'UNAUTHENTICATED' | 'TOKEN_EXPIRED' | 'TOKEN_REVOKED' } = {},
  ) {
    super(options.code ?? 'UNAUTHENTICATED', message, { cause: options.cause });
  }
}

/** The caller is authenticated but may not do this; the message says what was missing. */
export class ForbiddenError extends TidingsError {
  constructor(message: string, options: { details?: Record<string, unknown> } = {}) {
    super('FORBIDDEN', message, options);
  }
}

/** A stream's token expired or was revoked, or an admin ended it: it ends with this error. */
export class StreamEndedError extends TidingsError {
  constructor(code: 'TOKEN_EXPIRED' | 'TOKEN_REVOKED' | 'STREAM_ENDED', message: string) {
    super(code, message);
  }
}

/** A request went past a configured limit (depth, aliases, page size, inboxes, streams). */
export class LimitError extends TidingsError {
  constructor(message: string, options: { details?: Record<string, unknown> } = {}) {
    super('LIMIT_EXCEEDED', message, options);
  }
}

/** A caller published faster than `TIDINGS_PUBLISH_RATE`; nothing was stored. HTTP 429. */
export class RateLimitError extends TidingsError {
  /** Seconds after which a retry can succeed. */
  readonly retryAfterS: number;
  constructor(message: string, retryAfterS: number) {
    super('RATE_LIMITED', message, { details: { retryAfterSeconds: retryAfterS } });
    this.retryAfterS = retryAfterS;
  }
}

/**
 * HTTP-level failures (of the transport, or of the browser rules), answered with `status` and a
 * JSON error body.
 */
export class HttpError extends TidingsError {
  /** The HTTP status to answer with. */
  readonly status: number;
  constructor(
    status: number,
    code: TidingsErrorCode,
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(code, message, options);
    this.status = status;
  }
}
