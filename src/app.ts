/**
 * `buildApp(config)`: wires store, bus, hub, schema and transport into one instance. It opens no
 * port and reads no environment; the CLI (or a test, or an embedding service) does that.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { GraphQLSchema } from 'graphql';
import type { Logger } from 'pino';
import { cutOffError, cutOffMatches, parseCutOff, type CutOff } from './auth/cutoff.js';
import { createAuthenticator } from './auth/jwt.js';
import type { Principal } from './auth/principal.js';
import { createRateLimiter } from './auth/rate-limit.js';
import { createBus } from './bus/index.js';
import type { EventBus } from './bus/types.js';
import { DEFAULT_CONFIG, type TidingsConfig } from './config.js';
import { createContext, type Services } from './context.js';
import {
  AuthenticationError,
  ShuttingDownError,
  StoreError,
  StoreUnavailableError,
} from './errors.js';
import { createPublisher, type PublishFn } from './publish/publisher.js';
import type { StoredEvent } from './events/types.js';
import type { PublishEventInput } from './events/validate.js';
import { createHub, type Hub } from './hub/hub.js';
import { createSequencer, needsSequencer } from './hub/sequencer.js';
import { createHealth } from './observability/health.js';
import { changeLogLevel, createLogger } from './observability/logger.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { buildSchema } from './schema/index.js';
import { createSystemEvents, rejectionsReporter } from './observability/system.js';
import { claimStore, createStore, requireCapability, type StoreClaim } from './store/index.js';
import { watchOutages } from './store/outage.js';
import { startRetention } from './store/retention.js';
import type { EventStore } from './store/types.js';
import { createHttpExecutor } from './transport/execute-http.js';
import { createGraphQLSseHandler } from './transport/graphql-sse.js';
import { createWebSocketTransport } from './transport/graphql-ws-node.js';
import { createStreamService } from './stream/service.js';
import type { StreamControl, StreamService } from './stream/types.js';
import { graphQLSseOverHttp } from './transport/graphql-sse-http.js';
import { createRequestListener } from './transport/http.js';
import { limitRules } from './schema/limits.js';
import { createDocumentCache, createOperationPreparer } from './stream/operation.js';
import { createSseRegistry, type SseRegistry } from './transport/sse.js';

/** A running Tidings instance, without a port. */
export interface TidingsApp {
  /** The effective configuration. */
  readonly config: TidingsConfig;
  /** The Node request listener: pass it to `http.createServer`. */
  readonly listener: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
  /** The Node `upgrade` listener (graphql-ws): `server.on('upgrade', app.upgrade)`. */
  readonly upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** Publishes events in-process, exactly like `publishEvents`; resolves once they are stored. */
  readonly publish: PublishFn;
  /** Publishes one event in-process; resolves with it once it is stored. */
  emit(input: PublishEventInput): Promise<StoredEvent>;
  readonly schema: GraphQLSchema;
  /**
   * What every GraphQL execution of this instance shares: `createContext(app.services, principal)`
   * runs an operation as the API would.
   */
  readonly services: Services;
  readonly store: EventStore;
  readonly bus: EventBus;
  readonly hub: Hub;
  readonly sse: SseRegistry;
  /** The open streams, whatever carries them, to list or end them. */
  readonly streams: StreamControl;
  /** The stream engine every transport runs its operations on. */
  readonly streamService: StreamService;
  readonly logger: Logger;
  /** The instance's Prometheus metrics, served at `/metrics`. */
  readonly metrics: Metrics;
  /**
   * Shuts down: refuses new requests, ends every stream (with a resume hint), then closes the
   * bus and the store. Idempotent.
   */
  close(): Promise<void>;
}

/** Options of {@link buildApp} beyond the configuration. */
export interface BuildAppOptions {
  /** Logger to use; by default a pino logger at `config.logLevel` writing to stdout. */
  logger?: Logger;
  /** A store to use instead of opening `config.store` (embedding, tests). */
  store?: EventStore;
}

/** How long shutdown waits for requests in progress before it closes the store anyway, ms. */
const SHUTDOWN_GRACE_MS = 10_000;

/** Waits for `work` to settle, at most `ms`; logs what is still running after that. */
async function settleWithin(
  work: readonly Promise<unknown>[],
  ms: number,
  logger: Logger,
): Promise<void> {
  if (work.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), ms);
  });
  const timedOut = await Promise.race([Promise.allSettled(work).then(() => false), late]);
  clearTimeout(timer);
  if (timedOut) {
    logger.warn({ pending: work.length, graceMs: ms }, 'shutdown: requests still running');
  }
}

/** Builds one Tidings instance from its configuration. */
export async function buildApp(
  partial: Partial<TidingsConfig> = {},
  options: BuildAppOptions = {},
): Promise<TidingsApp> {
  const config: TidingsConfig = { ...DEFAULT_CONFIG, ...partial };
  const logger = options.logger ?? createLogger(config.logLevel);
  const metrics = createMetrics();
  const store = metrics.measureStore(
    options.store ?? (await createStore(config.store, { timeoutMs: config.storeTimeoutMs })),
  );
  let bus: EventBus;
  // A server on the memory bus must be alone on its store; one on a shared bus may have company.
  let claim: StoreClaim | null = null;
  try {
    // A setting that needs a capability the store lacks stops the start before anything opens.
    if (config.retentionMs !== Infinity) requireCapability(store, 'retention', 'TIDINGS_RETENTION');
    if (config.auth === 'jwt') requireCapability(store, 'revocations', 'TIDINGS_AUTH=jwt');
    if (!options.store) {
      claim = await claimStore(config.store, config.bus === 'memory' ? 'exclusive' : 'shared', {
        timeoutMs: config.storeTimeoutMs,
      });
    }
    bus = await createBus(config.bus, logger, config.busTimeoutMs);
  } catch (err) {
    await claim?.release();
    if (!options.store) await store.close();
    throw err;
  }
  const hub = createHub({
    store,
    onError: (err) => logger.error({ err }, '[hub] a stream sink failed'),
  });
  // Dispatch lag is observed here, once per batch, outside the hub's fan-out loop.
  const dispatch = (events: readonly StoredEvent[]) => {
    metrics.dispatched(events);
    hub.dispatch(events);
  };
  // A shared bus interleaves the events of several instances and can lose messages while it is
  // disconnected: the sequencer restores cursor order and fills gaps from the store. A store can
  // commit an append whose answer never came (a stalled connection): the publisher got an error
  // and dispatched nothing, so the sequencer finds such events in the store too.
  const sequencer = !needsSequencer(bus, store)
    ? null
    : createSequencer({
        store,
        logger,
        startAfter: await store.lastSeq(),
        dispatch,
      });
  const unsubscribe = bus.subscribe((events) => {
    if (!sequencer) return dispatch(events);
    if (bus.delivery.shared) metrics.arrivedFromBus(events);
    sequencer.receive(events);
  });
  const stopResync = bus.onResync?.(() => void sequencer?.resync());
  const stopStatus = bus.onStatus?.((status) =>
    status === 'down'
      ? system.report('tidings.bus.disconnected', 'ERROR', `[bus] ${bus.kind} is unreachable`, {
          bus: bus.kind,
        })
      : system.report('tidings.bus.reconnected', 'SUCCESS', `[bus] ${bus.kind} is back`, {
          bus: bus.kind,
        }),
  );
  const publishNow = createPublisher({
    store,
    bus,
    logger,
    onBusFailure: (events) => (sequencer ? sequencer.receive(events) : dispatch(events)),
    limits: { maxBodyBytes: config.maxEventBodyBytes },
    maxBatch: config.maxBatch,
  });
  // Every publish is timed to its acknowledgement, and logged at debug with its correlation ids.
  const publishTimed = metrics.timePublish(async (inputs: readonly PublishEventInput[]) => {
    const events = await publishNow(inputs);
    if (logger.isLevelEnabled('debug')) {
      const correlationIds = [...new Set(events.map((e) => e.correlationId))].filter((c) => c);
      logger.debug(
        { count: events.length, ids: events.map((e) => e.id), correlationIds },
        'events published',
      );
    }
    return events;
  });
  let closing: Promise<void> | null = null;
  /** Publishes accepted and not yet answered: shutdown waits for them. */
  const publishing = new Set<Promise<unknown>>();
  // Reports go straight to the publisher: a report about a failing store must not report itself.
  const system = createSystemEvents({ publish: publishNow, logger });
  const rejections = rejectionsReporter(system);
  const outages = watchOutages({ store, system, logger });
  const publish: PublishFn = (inputs) => {
    if (closing) return Promise.reject(new ShuttingDownError());
    const done = publishTimed(inputs);
    const settled = done.catch((err: unknown) => {
      if (outages.failed(err)) return;
      if (err instanceof StoreError || err instanceof StoreUnavailableError) {
        system.report('tidings.store.error', 'ERROR', `[store] a publish failed: ${err.message}`, {
          store: store.kind,
        });
      }
    });
    publishing.add(settled);
    void settled.then(() => publishing.delete(settled));
    return done;
  };
  // Infinity keeps every event: the one retention a store without the capability can serve.
  const retention =
    config.retentionMs === Infinity
      ? null
      : startRetention({ store, retentionMs: config.retentionMs, logger });
  const authenticator = createAuthenticator(config, store);
  const schema = buildSchema();
  const rules = limitRules(config);
  const documents = createDocumentCache(schema, { rules, maxCachedLength: 16 * 1024 });
  // The schema's resolvers reach the streams (presence, cut-offs) through the services, and the
  // streams run the schema: contexts are made at request time, once `services` exists.
  const contextFor = (principal: Principal) => createContext(services, principal);
  const preparer = createOperationPreparer({ schema, createContext: contextFor, documents });
  const streamService = createStreamService({
    hub,
    preparer,
    logger,
    maxStreamsPerClient: config.maxStreamsPerClient,
    maxQueueBytes: config.maxQueueBytes,
    maxQueueEvents: config.maxQueueEvents,
    // Counted as metrics; a slow consumer is also reported as a system event.
    metrics: {
      ...metrics,
      streamEnded(reason) {
        metrics.streamEnded(reason);
        if (reason === 'slow_consumer') {
          system.report(
            'tidings.stream.slow_consumer',
            'WARNING',
            '[transport] a stream was ended as a slow consumer (TIDINGS_MAX_QUEUE, TIDINGS_MAX_QUEUE_BYTES)',
            { limitEvents: config.maxQueueEvents, limitBytes: config.maxQueueBytes },
          );
        }
      },
    },
  });
  const sse = createSseRegistry({
    keepaliveMs: config.keepaliveMs,
    retryMs: config.retryMs,
    watchQueue: streamService.watchQueue,
  });
  const streams = graphQLSseOverHttp(
    createGraphQLSseHandler({
      service: streamService,
      logger,
      maxReservations: config.maxReservations,
      maxReservationsPerCaller: config.maxReservationsPerCaller,
    }),
    { sse, logger, maxRequestBytes: config.maxRequestBytes },
  );
  const websockets = createWebSocketTransport({
    streams: streamService,
    logger,
    authenticator,
    onRejected: (err) => rejections.count(err.code),
    browser: {
      corsOrigins: config.corsOrigins,
      authRequired: authenticator.required,
      host: config.host,
      allowedHosts: config.allowedHosts,
    },
    keepaliveMs: config.keepaliveMs,
    maxPayload: config.maxRequestBytes,
    // A socket waiting for connection_init holds what a reservation does: a connection, no stream.
    maxWaiting: config.maxReservations,
    isClosing: () => closing !== null,
  });
  const applyCutOff = (cut: CutOff) =>
    streamService.control.end((owner) => cutOffMatches(cut, owner), cutOffError(cut));
  const stopControl = bus.onControl?.((message) => {
    const cut = parseCutOff(message);
    if (cut) applyCutOff(cut);
  });
  const services: Services = {
    store,
    hub,
    publish,
    maxPageSize: config.maxPageSize,
    maxStreamInboxes: config.maxStreamInboxes,
    maxFilterItems: config.maxFilterItems,
    publishLimiter: createRateLimiter({ ratePerSecond: config.publishRate }),
    setLogLevel: (level) => changeLogLevel(logger, level),
    streams: streamService.control,
    async cutOff(cut) {
      const ended = applyCutOff(cut);
      try {
        await bus.publishControl?.(cut);
      } catch (err) {
        logger.error({ err }, '[auth] the other instances could not be told to end the streams');
      }
      return ended;
    },
  };
  const execute = createHttpExecutor({ schema, createContext: contextFor, logger, documents });
  /** Requests being handled (a stream counts until it is set up): shutdown waits for them. */
  const handling = new Set<Promise<void>>();
  const handle = createRequestListener({
    streams,
    execute,
    logger,
    maxRequestBytes: config.maxRequestBytes,
    health: createHealth({ store, bus, claim }),
    isClosing: () => closing !== null,
    authenticate: async (req) => {
      try {
        return await authenticator.authenticate(req);
      } catch (err) {
        if (err instanceof AuthenticationError) rejections.count(err.code);
        throw err;
      }
    },
    corsOrigins: config.corsOrigins,
    host: config.host,
    allowedHosts: config.allowedHosts,
    heapSnapshot: {
      intervalMs: config.heapSnapshotIntervalMs,
      kept: config.heapSnapshotsKept,
    },
    metrics,
    authRequired: authenticator.required,
  });
  const listener = (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const done = handle(req, res);
    handling.add(done);
    void done.finally(() => handling.delete(done));
    return done;
  };

  return {
    config,
    listener,
    upgrade: websockets.upgrade,
    publish,
    async emit(input) {
      const [event] = await publish([input]);
      return event as StoredEvent;
    },
    schema,
    services,
    store,
    bus,
    hub,
    sse,
    streams: streamService.control,
    streamService,
    logger,
    metrics,
    close() {
      closing ??= (async () => {
        // New requests get 503 and new publishes SHUTTING_DOWN from here on. Requests already
        // in progress finish (a publish is answered after its commit), and their events still
        // reach the streams, which then end with the resume hint.
        await settleWithin([...handling, ...publishing], SHUTDOWN_GRACE_MS, logger);
        await retention?.stop();
        hub.closeAll(new ShuttingDownError());
        // Let the streams write their final frames before their connections end.
        await new Promise((resolve) => setTimeout(resolve, 20));
        sse.close();
        await websockets.close();
        unsubscribe();
        stopResync?.();
        stopStatus?.();
        stopControl?.();
        await sequencer?.close();
        outages.stop();
        await bus.close();
        await store.close();
        await claim?.release();
      })();
      return closing;
    },
  };
}
