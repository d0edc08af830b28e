/**
 * The stream engine of one instance (see `types.ts` for its port): it runs prepared operations
 * onto a transport's sinks, and owns what a live stream does whatever carries it.
 *
 * - Grouping: streams with the same document, variables and visibility share one execution and
 *   one serialisation per event, and streams whose encoders share a key write the very same
 *   Buffer (`hub/groups.ts`).
 * - The registry of open streams: the per-client limit, presence (`control.list`), cut-offs
 *   (`control.end`), metrics and the 'stream opened'/'stream ended' log lines.
 * - Token expiry (a stream lives no longer than its token), the history-gap signal, the order of
 *   frames whose execution was asynchronous, and the slow-consumer limits.
 */
import { randomBytes } from 'node:crypto';
import type { ExecutionResult } from 'graphql';
import type { Logger } from 'pino';
import {
  HistoryGapError,
  LimitError,
  StreamEndedError,
  type TidingsError,
  type TidingsErrorCode,
} from '../errors.js';
import { encodeCursor } from '../events/cursor.js';
import { createResultGroups } from '../hub/groups.js';
import type { Hub, HubStream } from '../hub/hub.js';
import type { Metrics, StreamEndReason } from '../observability/metrics.js';
import { errorResult, maskResult } from '../schema/mask.js';
import type {
  InvalidOperation,
  OnceOperation,
  OperationPreparer,
  StreamOperation,
} from './operation.js';
import { queueLimits, watchQueue } from './queue.js';
import type {
  QueueLimitsOptions,
  RunningOperation,
  StreamControl,
  StreamMode,
  StreamOpener,
  StreamOwner,
  StreamService,
  StreamSink,
} from './types.js';

/** Dependencies and limits of {@link createStreamService}. */
export interface StreamServiceOptions extends QueueLimitsOptions {
  hub: Hub;
  preparer: OperationPreparer;
  logger: Logger;
  /**
   * Most streams open at once per client: the client id a stream asks for, else the caller's
   * client id or subject. Streams with none of these are not counted.
   * @default Infinity
   */
  maxStreamsPerClient?: number;
  /** Where open streams, deliveries and ended streams are counted. */
  metrics?: Pick<Metrics, 'readStreamsFrom' | 'streamEnded'>;
}

const tokenExpired = () =>
  new StreamEndedError(
    'TOKEN_EXPIRED',
    '[auth] the token of this stream expired: reconnect with a fresh token and resume from the ' +
      'last cursor you received',
  );

/** Why a stream that ended with `error` ended. */
const END_REASONS: Partial<Record<TidingsErrorCode, StreamEndReason>> = {
  SLOW_CONSUMER: 'slow_consumer',
  TOKEN_EXPIRED: 'token_expired',
  TOKEN_REVOKED: 'token_revoked',
  STREAM_ENDED: 'ended_by_admin',
  SHUTTING_DOWN: 'shutdown',
};

const endReason = (error: TidingsError): StreamEndReason => END_REASONS[error.code] ?? 'error';

/** A stream in the registry of open streams. */
interface OpenStream {
  id: string;
  /** The request that opened it. */
  reqId: string | null;
  owner: StreamOwner;
  mode: StreamMode;
  inboxes: readonly string[] | null;
  since: number;
  /** Its stream in the hub, which counts its deliveries (read only when listed or scraped). */
  hub: HubStream | null;
  /** Where its frames go, which knows how many bytes wait on its connection. */
  sink: StreamSink;
  /** Set once the stream runs. */
  running: RunningOperation | null;
}

/** How one operation writes its results and its end, whatever it is. */
interface OperationOutput {
  readonly sink: StreamSink;
  /** Set once it completed or was stopped: nothing more is written. */
  stopped: boolean;
  /** The frame of a result (masked), with the cursor it carries. */
  frameOf(result: ExecutionResult, cursor: string | null): string | Buffer;
  /** Writes a result that is not an event. */
  send(result: ExecutionResult): void;
  /** Writes `complete` and hands the sink back, once. */
  complete(): void;
  /** Writes `error` as its last result, then `complete`; nothing once it stopped. */
  end(error: unknown): void;
}

function createOperationOutput(sink: StreamSink, log: () => Logger): OperationOutput {
  const out: OperationOutput = {
    sink,
    stopped: false,
    frameOf(result, cursor) {
      const masked = result.errors?.length ? maskResult(result, log()) : result;
      return sink.encoder.next(JSON.stringify(masked), cursor);
    },
    send: (result) => sink.write(out.frameOf(result, null)),
    complete() {
      if (out.stopped) return;
      out.stopped = true;
      sink.write(sink.encoder.complete());
      sink.done();
    },
    end(error) {
      if (out.stopped) return;
      out.send(errorResult(error, log()));
      out.complete();
    },
  };
  return out;
}

/** Creates the stream engine of one instance. */
export function createStreamService(options: StreamServiceOptions): StreamService {
  const { hub, preparer, logger, metrics } = options;
  const limits = queueLimits(options);
  const groups = createResultGroups();
  const maxStreamsPerClient = options.maxStreamsPerClient ?? Infinity;
  /** Open subscription streams, for ending them by owner and listing them. */
  const openStreams = new Set<OpenStream>();
  /** Open streams per client key. */
  const perClient = new Map<string, number>();
  /** Events delivered by the streams that ended. */
  let endedDelivered = 0;
  const streamIdPrefix = randomBytes(4).toString('hex');
  let streamCount = 0;
  metrics?.readStreamsFrom(() => {
    const open: Record<StreamMode, number> = { distinct: 0, single: 0, websocket: 0 };
    let delivered = endedDelivered;
    for (const stream of openStreams) {
      open[stream.mode]++;
      delivered += stream.hub?.delivered ?? 0;
    }
    return { open, delivered, registered: hub.size };
  });

  /** The logger of the request `reqId`, made only to log an error. */
  function requestLogger(reqId: string | null): Logger {
    return reqId === null ? logger : logger.child({ reqId });
  }

  /** What the log lines of a stream say about it. */
  function describe(stream: OpenStream) {
    const { subject } = stream.owner.principal;
    const clientId = stream.owner.clientId ?? stream.owner.principal.clientId;
    return {
      ...(stream.reqId === null ? {} : { reqId: stream.reqId }),
      streamId: stream.id,
      mode: stream.mode,
      ...(subject === null ? {} : { subject }),
      ...(clientId === null ? {} : { clientId }),
    };
  }

  /** Executes, masks and serialises one result; never rejects. */
  function renderResult(
    executeOnce: () => ExecutionResult | Promise<ExecutionResult>,
  ): string | Promise<string> {
    const serialise = (result: ExecutionResult) => JSON.stringify(maskResult(result, logger));
    const fail = (err: unknown) => serialise(errorResult(err, logger));
    try {
      const result = executeOnce();
      return result instanceof Promise ? result.then(serialise, fail) : serialise(result);
    } catch (err) {
      return fail(err);
    }
  }

  const operationOutput = (sink: StreamSink, reqId: string | null) =>
    createOperationOutput(sink, () => requestLogger(reqId));

  /** The error of a stream the per-client limit refuses, or null when it may open. */
  function overLimit(clientKey: string | null): LimitError | null {
    if (clientKey === null || (perClient.get(clientKey) ?? 0) < maxStreamsPerClient) return null;
    return new LimitError(
      `[stream] client "${clientKey}" already has ${maxStreamsPerClient} open streams ` +
        '(TIDINGS_MAX_STREAMS_PER_CLIENT): close one, or use one stream for several inboxes',
      { details: { limit: maxStreamsPerClient } },
    );
  }

  /** Runs an operation that is not a stream: its errors, or its one result, then `complete`. */
  function runOnce(
    prepared: InvalidOperation | OnceOperation,
    out: OperationOutput,
  ): RunningOperation {
    const once: RunningOperation = {
      stop: () => (out.stopped = true),
      // A query still running when its connection overflows answers with the error: its client
      // learns why the result did not come.
      fail: (error) => out.end(error),
    };
    if (prepared.kind === 'invalid') {
      out.send({ errors: prepared.errors });
      out.complete();
      return once;
    }
    prepared.run().then(
      (result) => {
        if (out.stopped) return;
        out.send(result);
        out.complete();
      },
      (err: unknown) => out.end(err),
    );
    return once;
  }

  const run: StreamService['run'] = (prepared, sink, opener) => {
    const out = operationOutput(sink, opener.reqId);
    if (prepared.kind !== 'stream') return runOnce(prepared, out);
    const { principal } = opener;
    const owner: StreamOwner = { principal, clientId: prepared.spec.clientId };
    const clientKey = owner.clientId ?? principal.clientId ?? principal.subject;
    const refusal = overLimit(clientKey);
    if (refusal) {
      out.end(refusal);
      return { stop: () => (out.stopped = true), fail: () => {} };
    }
    return openStream(prepared, out, opener, owner, clientKey);
  };

  /**
   * Opens a subscription stream. Its group renders each event once for every stream with the
   * same document, variables and visibility; this stream writes the group's bytes. Rendering is
   * synchronous unless a resolver is asynchronous; then frames wait in `pending`, in order.
   */
  function openStream(
    streamOp: StreamOperation,
    out: OperationOutput,
    opener: StreamOpener,
    owner: StreamOwner,
    clientKey: string | null,
  ): RunningOperation {
    const { principal, reqId } = opener;
    const { sink } = out;
    const { encoder } = sink;
    const group = groups.join(streamOp.groupKey, () => ({
      render: (event) => renderResult(streamOp.execute.bind(null, event)),
    }));
    let pending: Promise<void> | null = null;
    let left = false;
    let expiry: NodeJS.Timeout | null = null;
    const record: OpenStream = {
      id: `${streamIdPrefix}-${(++streamCount).toString(36)}`,
      reqId,
      owner,
      mode: opener.mode,
      inboxes: streamOp.spec.requestedInboxes ?? null,
      since: Date.now(),
      hub: null,
      sink,
      running: null,
    };
    openStreams.add(record);
    if (clientKey !== null) perClient.set(clientKey, (perClient.get(clientKey) ?? 0) + 1);
    logger.info({ ...describe(record), inboxes: record.inboxes }, 'stream opened');
    const leave = (reason: StreamEndReason) => {
      if (left) return;
      left = true;
      groups.leave(group);
      openStreams.delete(record);
      if (clientKey !== null) {
        const n = (perClient.get(clientKey) ?? 1) - 1;
        if (n === 0) perClient.delete(clientKey);
        else perClient.set(clientKey, n);
      }
      if (expiry) clearTimeout(expiry);
      const delivered = record.hub?.delivered ?? 0;
      endedDelivered += delivered;
      metrics?.streamEnded(reason);
      logger.info(
        {
          ...describe(record),
          durationMs: Date.now() - record.since,
          eventsDelivered: delivered,
          reason,
        },
        'stream ended',
      );
    };
    // A stream lives no longer than its token.
    const expiresAt = principal.expiresAt;
    const arm = () => {
      if (expiresAt === null) return;
      const remaining = expiresAt - Date.now();
      expiry = setTimeout(
        () => (Date.now() < expiresAt ? arm() : handle.fail(tokenExpired())),
        Math.max(0, Math.min(remaining, 2 ** 31 - 1)),
      );
      expiry.unref();
    };
    /** Writes a frame now, or after the frames still being rendered, keeping their order. */
    const writeInOrder = (frame: string | Buffer | Promise<string | Buffer>) => {
      if (pending === null && !(frame instanceof Promise)) {
        sink.write(frame);
        return;
      }
      const mine: Promise<void> = (pending ?? Promise.resolve())
        .then(() => frame)
        .then((bytes) => {
          if (!out.stopped) sink.write(bytes);
          if (pending === mine) pending = null;
        });
      pending = mine;
    };
    const stream: HubStream = hub.open(streamOp.spec, {
      deliver(event) {
        if (!out.stopped) writeInOrder(group.frameFor(event, encoder));
      },
      gap({ afterSeq, purgedThrough }) {
        if (out.stopped) return;
        // The frame's cursor is the horizon, so a client resuming from it (an `EventSource`
        // reconnecting) continues after the gap instead of being told about it again.
        const horizon = encodeCursor(purgedThrough);
        const error = new HistoryGapError(encodeCursor(afterSeq), horizon);
        writeInOrder(out.frameOf(errorResult(error, requestLogger(reqId)), horizon));
      },
      // A replay waits for frames still being rendered and for the client to read.
      backlog: () => pending ?? sink.drained(),
      end(error: TidingsError | null) {
        leave(error ? endReason(error) : 'completed');
        if (error) {
          // The client resumes from the last cursor it received, so frames still being rendered
          // are dropped and the error (the resume hint at shutdown) goes out now: after them, it
          // could come too late for a connection that is about to close.
          out.end(error);
          return;
        }
        if (pending) void pending.then(out.complete);
        else out.complete();
      },
    });
    const handle: RunningOperation = {
      stop(reason = 'client_gone') {
        out.stopped = true;
        leave(reason);
        stream.close();
      },
      fail(error) {
        if (out.stopped) return;
        leave(endReason(error));
        stream.close();
        out.end(error);
      },
    };
    record.hub = stream;
    record.running = handle;
    if (!left) arm();
    return handle;
  }

  const control: StreamControl = {
    end(match, error) {
      let ended = 0;
      for (const stream of [...openStreams]) {
        if (!match(stream.owner)) continue;
        stream.running?.fail(error);
        ended++;
      }
      return ended;
    },
    owners: () => [...openStreams].map((s) => s.owner),
    list: () =>
      [...openStreams].map((s) => ({
        id: s.id,
        mode: s.mode,
        subject: s.owner.principal.subject,
        clientId: s.owner.clientId ?? s.owner.principal.clientId,
        inboxes: s.inboxes,
        since: s.since,
        eventsDelivered: s.hub?.delivered ?? 0,
        queueBytes: s.sink.queueBytes(),
      })),
  };

  return {
    prepare: (params, request) =>
      preparer.prepare(params, request.method, request.resumeAfter, request.principal),
    run,
    watchQueue: () => watchQueue(limits),
    limits,
    control,
  };
}
