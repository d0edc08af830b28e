/**
 * Embedding: a Node service runs Tidings in its own process and publishes without HTTP, in one
 * line from any module:
 *
 * ```ts
 * const tidings = await createTidings({ store: 'sqlite:./data/events.db', port: 4000 });
 * await tidings.event('vm.state_changed').inbox('pdfm').toClient(hostId).severity('WARNING')
 *   .body({ vm: 42, state: 'stopped' }).publish();
 * ```
 */
import { buildApp, type TidingsApp } from './app.js';
import { startServer } from './cli/serve.js';
import type { TidingsConfig } from './config.js';
import type { Severity, StoredEvent } from './events/types.js';
import type { PublishEventInput } from './events/validate.js';

/** Options of {@link createTidings}: the configuration, plus whether to listen. */
export type CreateTidingsOptions = Partial<TidingsConfig> & {
  /**
   * Serve HTTP on `port`/`host` (streams, GraphiQL, the API). Without it, the instance only
   * publishes and stores, in-process.
   * @default true
   */
  listen?: boolean;
};

/** A fluent event under construction; `publish()` stores it. Each setter returns the builder. */
export interface EventBuilder {
  id(id: string): EventBuilder;
  inbox(inbox: string): EventBuilder;
  /** Targets the event to one client: only that client's streams (and admins) receive it. */
  toClient(clientId: string): EventBuilder;
  severity(severity: Severity): EventBuilder;
  message(message: string): EventBuilder;
  body(body: unknown): EventBuilder;
  category(category: string): EventBuilder;
  action(action: string): EventBuilder;
  resource(type: string, id: string): EventBuilder;
  actor(actor: string): EventBuilder;
  source(source: string): EventBuilder;
  /** Links the event to its parent (an id, or the stored parent event). */
  parent(parent: string | Pick<StoredEvent, 'id'>): EventBuilder;
  correlationId(correlationId: string): EventBuilder;
  timestamp(timestamp: Date | string | number): EventBuilder;
  /** The input as built so far. */
  toInput(): PublishEventInput;
  /** Validates and stores the event; resolves with it once durable (and delivered to streams). */
  publish(): Promise<StoredEvent>;
}

/** An embedded Tidings instance. */
export interface Tidings {
  readonly app: TidingsApp;
  /** Base URL when listening, e.g. `http://127.0.0.1:4000`; null otherwise. */
  readonly url: string | null;
  /** Publishes one event; resolves with it once it is durably stored. */
  emit(input: PublishEventInput): Promise<StoredEvent>;
  /** Starts a fluent event of `type`. */
  event(type: string): EventBuilder;
  /** Stops: ends streams with a resume hint, finishes publishes, closes the store. */
  close(): Promise<void>;
}

/** A builder over `emit`; exported for the testing helpers. */
export function eventBuilder(
  type: string,
  emit: (input: PublishEventInput) => Promise<StoredEvent>,
): EventBuilder {
  const input: PublishEventInput = { type };
  const set = <K extends keyof PublishEventInput>(key: K, value: PublishEventInput[K]) => {
    input[key] = value;
    return builder;
  };
  const builder: EventBuilder = {
    id: (id) => set('id', id),
    inbox: (inbox) => set('inbox', inbox),
    toClient: (clientId) => set('clientId', clientId),
    severity: (severity) => set('severity', severity),
    message: (message) => set('message', message),
    body: (body) => set('body', body),
    category: (category) => set('category', category),
    action: (action) => set('action', action),
    resource: (resourceType, resourceId) => set('resource', { type: resourceType, id: resourceId }),
    actor: (actor) => set('actor', actor),
    source: (source) => set('source', source),
    parent: (parent) => set('parentId', typeof parent === 'string' ? parent : parent.id),
    correlationId: (correlationId) => set('correlationId', correlationId),
    timestamp: (timestamp) => set('timestamp', timestamp),
    toInput: () => ({ ...input }),
    publish: () => emit({ ...input }),
  };
  return builder;
}

/**
 * Starts Tidings inside this process: opens the store, and (unless `listen: false`) serves HTTP.
 * @throws ConfigError or StoreError when the configuration or the store is unusable.
 */
export async function createTidings(options: CreateTidingsOptions = {}): Promise<Tidings> {
  const { listen = true, ...config } = options;
  const running = listen ? await startServer(config) : null;
  const app = running?.app ?? (await buildApp(config));
  const emit = (input: PublishEventInput) => app.emit(input);
  return {
    app,
    url: running?.url ?? null,
    emit,
    event: (type) => eventBuilder(type, emit),
    close: () => running?.stop() ?? app.close(),
  };
}
