/**
 * Benchmark server process: graphql-yoga's documented subscription pattern on the same schema.
 * SDL-first (`makeExecutableSchema` over the committed `schema.graphql`), `createPubSub`, and
 * `pipe(pubSub.subscribe('events'), filter(...))` for `eventStream`, served by `createYoga` as a
 * Node listener with its built-in SSE (`GET /graphql` with `Accept: text/event-stream`). Every
 * subscriber executes its own selection set for every event: that is the baseline.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { GraphQLScalarType, Kind, valueFromASTUntyped } from 'graphql';
import { createPubSub, createYoga, filter, pipe } from 'graphql-yoga';
import { listenLocal, runChild } from './child.js';

/** An event as this server keeps it: every field of the schema's `Event`. */
interface BenchEvent {
  id: string;
  cursor: string;
  type: string;
  inbox: string;
  clientId: string | null;
  timestamp: string;
  receivedAt: string;
  message: string | null;
  body: unknown;
  severity: string;
  category: string | null;
  action: string | null;
  resource: { type: string; id: string } | null;
  actor: string | null;
  source: string | null;
  parentId: string | null;
  correlationId: string | null;
}

/** `PublishEventInput` as GraphQL hands it to the resolver. */
type PublishInput = Partial<Omit<BenchEvent, 'cursor' | 'receivedAt'>> & { type: string };

const typeDefs = readFileSync(new URL('../../../schema.graphql', import.meta.url), 'utf8');

const pubSub = createPubSub<{ events: [event: BenchEvent] }>();
let seq = 0;

function publish(input: PublishInput): BenchEvent {
  const now = new Date().toISOString();
  seq += 1;
  const event: BenchEvent = {
    id: input.id ?? randomUUID(),
    cursor: seq.toString(36).padStart(12, '0'),
    type: input.type,
    inbox: input.inbox ?? 'global',
    clientId: input.clientId ?? null,
    timestamp: input.timestamp ?? now,
    receivedAt: now,
    message: input.message ?? null,
    body: input.body ?? null,
    severity: input.severity ?? 'INFO',
    category: input.category ?? null,
    action: input.action ?? null,
    resource: input.resource ?? null,
    actor: input.actor ?? null,
    source: input.source ?? null,
    parentId: input.parentId ?? null,
    correlationId: input.correlationId ?? null,
  };
  pubSub.publish('events', event);
  return event;
}

const schema = makeExecutableSchema({
  typeDefs,
  resolvers: {
    DateTime: new GraphQLScalarType({
      name: 'DateTime',
      serialize: (value) => (value instanceof Date ? value.toISOString() : String(value)),
      parseValue: (value) => String(value),
      parseLiteral: (ast) => (ast.kind === Kind.STRING ? ast.value : null),
    }),
    JSON: new GraphQLScalarType({
      name: 'JSON',
      serialize: (value) => value,
      parseValue: (value) => value,
      parseLiteral: (ast, variables) => valueFromASTUntyped(ast, variables ?? undefined),
    }),
    Query: {
      event: () => null,
      events: () => ({
        edges: [],
        nodes: [],
        pageInfo: {
          hasNextPage: false,
          hasPreviousPage: false,
          startCursor: null,
          endCursor: null,
        },
      }),
    },
    Mutation: {
      publishEvent: (_root: unknown, args: { input: PublishInput }) => publish(args.input),
      publishEvents: (_root: unknown, args: { inputs: PublishInput[] }) => args.inputs.map(publish),
    },
    Subscription: {
      eventStream: {
        subscribe: (_root: unknown, args: { inboxes?: string[] | null }) => {
          const inboxes = args.inboxes;
          return pipe(
            pubSub.subscribe('events'),
            filter((e: BenchEvent) => inboxes == null || inboxes.includes(e.inbox)),
          );
        },
        resolve: (e: BenchEvent) => e,
      },
    },
    Event: {
      parent: () => null,
      children: () => [],
    },
  },
});

runChild('yoga', async () => {
  const yoga = createYoga({ schema, graphqlEndpoint: '/graphql' });
  return listenLocal(createServer(yoga));
});
