/**
 * Builds the GraphQL schema from the Pothos types. `npm run schema` prints it to `schema.graphql`.
 */
import { lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';
import { builder } from './builder.js';
import './scalars.js';
import './event.js';
import './inputs.js';
import './query.js';
import './mutation.js';
import './subscription.js';
import './presence.js';

export { authorizeStream, toStreamSpec, type EventStreamArgs } from './subscription.js';

let schema: GraphQLSchema | undefined;

/** The Tidings schema (built once). */
export function buildSchema(): GraphQLSchema {
  schema ??= builder.toSchema();
  return schema;
}

/** The schema as SDL, sorted, as committed in `schema.graphql`. */
export function printTidingsSchema(): string {
  return `${printSchema(lexicographicSortSchema(buildSchema()))}\n`;
}
