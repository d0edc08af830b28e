/**
 * Prometheus metrics of one instance, served at `/metrics`. Every instance has a registry of its
 * own, so several instances in one process (tests, embedding) never share counters; the process
 * metrics (CPU, memory, event loop, GC) are collected once per process and registered into each
 * instance's registry.
 *
 * Hot paths do not touch prom-client: streams count their deliveries in a plain field and the
 * open streams are counted, and the delivery total summed, when Prometheus scrapes.
 */
import { performance } from 'node:perf_hooks';
import {
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  Registry,
  type Metric,
} from 'prom-client';
import type { StoredEvent } from '../events/types.js';
import type { EventStore } from '../store/types.js';
import type { StreamMode } from '../stream/types.js';

/** Why a stream ended, as counted by `tidings_streams_ended_total{reason}`. */
export const STREAM_END_REASONS = [
  'client_gone',
  'slow_consumer',
  'token_expired',
  'token_revoked',
  'ended_by_admin',
  'shutdown',
  'error',
  'completed',
] as const;

/** One of {@link STREAM_END_REASONS}. */
export type StreamEndReason = (typeof STREAM_END_REASONS)[number];

/** What the stream transport reports at each scrape. */
export interface StreamFigures {
  /** Streams open now, by mode. */
  open: Record<StreamMode, number>;
  /** Frames of events written to streams since the instance started. */
  delivered: number;
  /**
   * Streams registered with the hub (`hub.size`): the engine's own count, which must equal the
   * open streams that presence lists.
   */
  registered: number;
}

/** The metrics of one instance. */
export interface Metrics {
  /** The instance's registry. */
  readonly registry: Registry;
  /** The content type of {@link Metrics.render}. */
  readonly contentType: string;
  /** Every metric in the Prometheus text format. */
  render(): Promise<string>;
  /** Sets where open streams and deliveries are read from when Prometheus scrapes. */
  readStreamsFrom(read: () => StreamFigures): void;
  /** Counts one stream that ended. */
  streamEnded(reason: StreamEndReason): void;
  /** Wraps a publish function: each call is timed from the call to its acknowledgement. */
  timePublish<A extends unknown[], R>(
    publish: (...args: A) => Promise<R>,
  ): (...args: A) => Promise<R>;
  /** Observes the lag of events handed to the hub now (from their `receivedAt`). */
  dispatched(events: readonly StoredEvent[]): void;
  /** Observes the lag of events arriving from a shared bus now (from their `receivedAt`). */
  arrivedFromBus(events: readonly StoredEvent[]): void;
  /**
   * The store, with every call timed by operation and newly stored events counted as published.
   * Every other property reads through to `store`.
   */
  measureStore(store: EventStore): EventStore;
}

/** Buckets of request-scale durations, seconds: 100 µs to 10 s. */
const LATENCY_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** The process metrics, collected once per process (their collectors are process-wide). */
let processMetrics: Metric[] | null = null;

function defaultMetrics(): Metric[] {
  if (!processMetrics) {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    processMetrics = registry.getMetricsAsArray() as unknown as Metric[];
  }
  return processMetrics;
}

/** Seconds from `receivedAt` (epoch ms) to `now`; never negative (clocks can disagree). */
const lagSeconds = (now: number, receivedAt: number) => Math.max(0, now - receivedAt) / 1000;

/** Creates the metrics of one instance, with a registry of its own. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  for (const metric of defaultMetrics()) registry.registerMetric(metric);
  const registers = [registry];

  let readStreams: () => StreamFigures = () => ({
    open: { distinct: 0, single: 0, websocket: 0 },
    delivered: 0,
    registered: 0,
  });
  /** The delivery total already added to the counter. */
  let deliveredReported = 0;

  new Gauge({
    name: 'tidings_streams_open',
    help: 'Event streams open on this instance, by mode: graphql-sse distinct or single connection, or graphql-ws (websocket).',
    labelNames: ['mode'],
    registers,
    collect() {
      const { open } = readStreams();
      this.set({ mode: 'distinct' }, open.distinct);
      this.set({ mode: 'single' }, open.single);
      this.set({ mode: 'websocket' }, open.websocket);
    },
  });
  new Gauge({
    name: 'tidings_hub_streams',
    help: 'Streams registered with the hub of this instance: equal to the open streams `streams` lists (a difference is a stream outside every count).',
    registers,
    collect() {
      this.set(readStreams().registered);
    },
  });
  const published = new Counter({
    name: 'tidings_events_published_total',
    help: 'Events stored by publishes on this instance (idempotent retries of stored events are not counted).',
    registers,
  });
  new Counter({
    name: 'tidings_events_delivered_total',
    help: 'Frames of events written to the streams of this instance (replayed and live).',
    registers,
    collect() {
      const { delivered } = readStreams();
      if (delivered > deliveredReported) this.inc(delivered - deliveredReported);
      deliveredReported = Math.max(deliveredReported, delivered);
    },
  });
  const ended = new Counter({
    name: 'tidings_streams_ended_total',
    help: 'Event streams that ended on this instance, by reason.',
    labelNames: ['reason'],
    registers,
  });
  const endedBy = Object.fromEntries(
    STREAM_END_REASONS.map((reason) => {
      const child = ended.labels(reason);
      child.inc(0);
      return [reason, child];
    }),
  ) as Record<StreamEndReason, Counter.Internal>;
  const publishDuration = new Histogram({
    name: 'tidings_publish_duration_seconds',
    help: 'Time from a publish call (publishEvent, publishEvents, emit) to its acknowledgement, after the commit.',
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const dispatchLag = new Histogram({
    name: 'tidings_dispatch_lag_seconds',
    help: "Time from an event's receivedAt (when the store took it) to its dispatch to the streams of this instance.",
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const busLag = new Histogram({
    name: 'tidings_bus_lag_seconds',
    help: "Time from an event's receivedAt to its arrival from a shared bus (Redis); not observed with the memory bus.",
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const storeDuration = new Histogram({
    name: 'tidings_store_query_duration_seconds',
    help: 'Duration of event store calls, by operation (append, page, readAfter, ...).',
    labelNames: ['op'],
    buckets: LATENCY_BUCKETS,
    registers,
  });

  return {
    registry,
    contentType: registry.contentType,
    render: () => registry.metrics(),
    readStreamsFrom(read) {
      readStreams = read;
    },
    streamEnded(reason) {
      endedBy[reason].inc();
    },
    timePublish(publish) {
      return (...args) => {
        const start = performance.now();
        const done = publish(...args);
        const observe = () => publishDuration.observe((performance.now() - start) / 1000);
        done.then(observe, observe);
        return done;
      };
    },
    dispatched(events) {
      const now = Date.now();
      for (const event of events) dispatchLag.observe(lagSeconds(now, event.receivedAt));
    },
    arrivedFromBus(events) {
      const now = Date.now();
      for (const event of events) busLag.observe(lagSeconds(now, event.receivedAt));
    },
    measureStore(store) {
      return measured(store, (op) => storeDuration.labels(op), published);
    },
  };
}

/**
 * A decorator of `store`: each method (`close` aside) is timed into the child of `timerFor(op)`;
 * `append` also counts the events it created into `published`. Getters and other properties read
 * through, so methods added to the store later are measured too.
 */
function measured<T extends object>(
  store: T,
  timerFor: (op: string) => Histogram.Internal<string>,
  published: Counter,
): T {
  const result: Record<string, unknown> = {};
  const seen = new Set<string>();
  for (
    let proto: object | null = store;
    proto !== null && proto !== Object.prototype;
    proto = Object.getPrototypeOf(proto) as object | null
  ) {
    for (const [key, descriptor] of Object.entries(Object.getOwnPropertyDescriptors(proto))) {
      if (seen.has(key) || key === 'constructor' || key === 'close') continue;
      seen.add(key);
      const value: unknown = descriptor.value;
      if (key === 'retention' || key === 'revocations') {
        // A capability's methods are store calls too, timed under their own names.
        if (value) result[key] = measured(value as object, timerFor, published);
        continue;
      }
      if (typeof value !== 'function') {
        Object.defineProperty(result, key, {
          enumerable: true,
          get: () => (store as unknown as Record<string, unknown>)[key],
        });
        continue;
      }
      const method = value as (...args: unknown[]) => unknown;
      const timer = timerFor(key);
      const countCreated =
        key === 'append'
          ? (outcomes: unknown) => {
              if (!Array.isArray(outcomes)) return;
              let created = 0;
              for (const o of outcomes as { created: boolean }[]) if (o.created) created++;
              if (created > 0) published.inc(created);
            }
          : null;
      result[key] = (...args: unknown[]) => {
        const start = performance.now();
        const outcome = method.apply(store, args);
        if (!(outcome instanceof Promise)) {
          timer.observe((performance.now() - start) / 1000);
          return outcome;
        }
        const observe = () => timer.observe((performance.now() - start) / 1000);
        outcome.then((value: unknown) => {
          observe();
          countCreated?.(value);
        }, observe);
        return outcome;
      };
    }
  }
  // `close` stays the store's own, bound, so closing never goes through a timer.
  const { close } = store as Partial<EventStore>;
  if (close) result.close = () => close.call(store);
  return result as T;
}
