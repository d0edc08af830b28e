/**
 * The stream engine executes subscriptions itself (once per event, against the operation's
 * selection); graphql-js's standard `subscribe()` maps a source stream through the schema. Fed the
 * same hub stream, both must give the same payloads for the same document and variables. (The
 * schema's own `subscribe` refuses, so graphql-js gets a copy whose `eventStream` reads the hub.)
 */
import {
  GraphQLObjectType,
  GraphQLSchema,
  parse,
  subscribe,
  validate,
  type ExecutionResult,
} from 'graphql';
import { describe, expect, it } from 'vitest';
import { UNAUTHENTICATED_ADMIN } from '../../src/auth/principal.js';
import { createContext, type TidingsContext } from '../../src/context.js';
import { iterateStream } from '../../src/hub/iterate.js';
import { toStreamSpec, type EventStreamArgs } from '../../src/schema/index.js';
import { waitFor, serverWithStreams } from './helpers.js';

const t = serverWithStreams();

const DOCUMENT = /* GraphQL */ `
  fragment Who on Event {
    actor
    source
    resource {
      type
      id
    }
  }

  subscription Parity(
    $inboxes: [String!]
    $client: String
    $types: [String!]
    $withBody: Boolean!
  ) {
    live: eventStream(inboxes: $inboxes, clientId: $client, filter: { types: $types }) {
      __typename
      key: id
      cursor
      type
      inbox
      clientId
      severity
      timestamp
      body @include(if: $withBody)
      message @skip(if: $withBody)
      ...Who
      ... on Event {
        correlationId
      }
      parent {
        id
        type
        parentRef: parentId
      }
      children {
        id
      }
    }
  }
`;

/** The root field reached through a fragment spread and an inline fragment. */
const ROOT_IN_FRAGMENT = /* GraphQL */ `
  subscription RootInFragment($inboxes: [String!]) {
    ...Root
  }

  fragment Root on Subscription {
    ... on Subscription {
      eventStream(inboxes: $inboxes) {
        cursor
        ... on Event {
          type
        }
      }
    }
  }
`;

const VARIABLES = { inboxes: ['parity'], client: 'c-1', types: ['job.*'], withBody: true };

/** The app's schema, with an `eventStream` whose source is the hub, as graphql-js expects. */
function referenceSchema(schema: GraphQLSchema): GraphQLSchema {
  const config = schema.toConfig();
  const original = schema.getSubscriptionType() as GraphQLObjectType;
  const fields = original.toConfig().fields;
  const { eventStream } = fields;
  if (!eventStream) throw new Error('the schema has no eventStream field');
  const subscription = new GraphQLObjectType({
    ...original.toConfig(),
    fields: {
      ...fields,
      eventStream: {
        ...eventStream,
        subscribe: (_root, args, ctx: TidingsContext) =>
          iterateStream(ctx.services.hub, toStreamSpec(args as EventStreamArgs, ctx.visibility)),
      },
    },
  });
  return new GraphQLSchema({
    ...config,
    subscription,
    types: config.types.filter((type) => type !== original),
  });
}

/** Collects `n` results of graphql-js's `subscribe()` for the document. */
async function viaGraphqlJs(
  n: number,
  publish: () => Promise<unknown>,
  source = DOCUMENT,
  variableValues: Record<string, unknown> = VARIABLES,
) {
  const before = t.s.app.hub.size;
  const document = parse(source);
  expect(validate(t.s.app.schema, document)).toEqual([]);
  const result = await subscribe({
    schema: referenceSchema(t.s.app.schema),
    document,
    variableValues,
    contextValue: createContext(t.s.app.services, UNAUTHENTICATED_ADMIN),
  });
  if (!(Symbol.asyncIterator in result)) throw new Error(JSON.stringify(result));
  await waitFor(() => t.s.app.hub.size > before, 'the graphql-js stream');
  await publish();
  const results: ExecutionResult[] = [];
  for await (const r of result) {
    results.push(r);
    if (results.length === n) break;
  }
  await waitFor(() => t.s.app.hub.size === before, 'the graphql-js stream to close');
  return JSON.parse(JSON.stringify(results)) as unknown[];
}

describe.each([false, true])('subscribe() parity, singleConnection=%s', (singleConnection) => {
  it('should give the same payloads over SSE as graphql-js subscribe() for aliases, __typename, fragments, directives, variables and parent', async () => {
    const [parent] = await t.s.app.publish([
      { id: `parent-${singleConnection}`, type: 'job.started', inbox: 'parity' },
    ]);
    const inputs = [
      {
        id: `child-${singleConnection}`,
        type: 'job.completed',
        inbox: 'parity',
        parentId: parent?.id,
        body: { ok: true, n: [1, 2] },
        message: 'done',
        actor: 'user/alice',
        source: 'runner',
        resource: { type: 'job', id: 'j-1' },
        correlationId: 'corr',
        severity: 'SUCCESS' as const,
        timestamp: '2026-01-31T12:00:00Z',
      },
      { type: 'job.targeted', inbox: 'parity', clientId: 'c-1', parentId: 'missing' },
      { type: 'other.type', inbox: 'parity' },
      { type: 'job.for.someone.else', inbox: 'parity', clientId: 'c-2' },
      { type: 'job.last', inbox: 'parity' },
    ];
    // Both read live events from the same cursor: open SSE first, then run graphql-js, whose
    // publish goes to both.
    const sse = await t.subs.open(t.s.client({ singleConnection }), VARIABLES, DOCUMENT);
    const js = await viaGraphqlJs(3, () => t.s.app.publish(inputs));
    await sse.next(3);
    expect(sse.results).toEqual(js);
    expect(js).toHaveLength(3);
    const [first] = js as { data: { live: Record<string, unknown> } }[];
    expect(first?.data.live).toMatchObject({
      __typename: 'Event',
      key: `child-${singleConnection}`,
      body: { ok: true, n: [1, 2] },
      actor: 'user/alice',
      resource: { type: 'job', id: 'j-1' },
      correlationId: 'corr',
      timestamp: '2026-01-31T12:00:00.000Z',
      parent: { id: parent?.id, type: 'job.started', parentRef: null },
      children: [],
    });
    expect(first?.data.live).not.toHaveProperty('message');
  });

  it('should find the root field through fragments the same way graphql-js does', async () => {
    const variables = { inboxes: ['parity-fragments'] };
    const sse = await t.subs.open(t.s.client({ singleConnection }), variables, ROOT_IN_FRAGMENT);
    const js = await viaGraphqlJs(
      2,
      () =>
        t.s.app.publish([
          { type: 'one', inbox: 'parity-fragments' },
          { type: 'two', inbox: 'parity-fragments' },
        ]),
      ROOT_IN_FRAGMENT,
      variables,
    );
    await sse.next(2);
    expect(sse.results).toEqual(js);
    expect(js).toEqual([
      { data: { eventStream: { cursor: expect.any(String), type: 'one' } } },
      { data: { eventStream: { cursor: expect.any(String), type: 'two' } } },
    ]);
  });
});
