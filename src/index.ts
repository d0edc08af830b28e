/**
 * Tidings: a GraphQL-native event service. This is the package's public API for embedding.
 */
export { buildApp, type TidingsApp, type BuildAppOptions } from './app.js';
export { startServer, type RunningServer } from './cli/serve.js';
export {
  createTidings,
  eventBuilder,
  type CreateTidingsOptions,
  type EventBuilder,
  type Tidings,
} from './embed.js';
export { loadConfig, DEFAULT_CONFIG, type TidingsConfig } from './config.js';
export * from './errors.js';
export { encodeCursor, decodeCursor } from './events/cursor.js';
export type { PublishEventInput } from './events/validate.js';
export * from './events/types.js';
export type { EventStore } from './store/types.js';
export type { EventBus } from './bus/types.js';
export { buildSchema, printTidingsSchema } from './schema/index.js';
