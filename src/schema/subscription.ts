import { GraphQLError } from 'graphql';
import { requireClient, requireInboxes, requireScope } from '../auth/principal.js';
import type { TidingsContext } from '../context.js';
import { LimitError } from '../errors.js';
import { decodeCursor } from '../events/cursor.js';
import { checkFilterLists, compileFilter } from '../events/filter.js';
import type { EventFilter, StoredEvent, Visibility } from '../events/types.js';
import type { StreamSpec } from '../hub/hub.js';
import { builder } from './builder.js';
import { EventType } from './event.js';
import { EventFilterInput, toEventFilter, type EventFilterArg } from './inputs.js';

/** What a subscription that does not reach the stream engine gets: how to send it instead. */
export const SUBSCRIPTION_REFUSAL =
  'Subscriptions are streamed: send this request with Accept: text/event-stream ' +
  '(or to /graphql/stream with a graphql-sse client), or over a WebSocket with graphql-ws.';

/** The arguments of `eventStream`, as resolvers receive them. */
export interface EventStreamArgs {
  inboxes?: readonly string[] | null;
  clientId?: string | null;
  filter?: EventFilterArg | null;
  after?: string | null;
}

/** Exact inbox names usable as index keys, or null when any entry is a pattern. */
function exactInboxes(list: readonly string[] | null | undefined): readonly string[] | null {
  return list && !list.some((i) => i.endsWith('*')) ? list : null;
}

/**
 * Checks that the caller may open this stream: the `events:read` scope, inboxes within its
 * `inboxes` claim, its own client id (unless admin), no more inboxes than the limit and no list
 * longer than `TIDINGS_MAX_FILTER_ITEMS`.
 * @throws ForbiddenError, LimitError or ValidationError, before anything is registered.
 */
export function authorizeStream(args: EventStreamArgs, ctx: TidingsContext): void {
  const { principal } = ctx;
  requireScope(principal, 'events:read', 'read events');
  const named = [...(args.inboxes ?? []), ...(args.filter?.inboxes ?? [])];
  const max = ctx.services.maxStreamInboxes;
  if ((args.inboxes?.length ?? 0) > max || (args.filter?.inboxes?.length ?? 0) > max) {
    throw new LimitError(
      `[stream] a stream may name at most ${max} inboxes (TIDINGS_MAX_STREAM_INBOXES): use ` +
        'prefix patterns such as "hosts-*", or several streams',
      { details: { limit: max } },
    );
  }
  const maxItems = ctx.services.maxFilterItems;
  checkFilterLists(args, maxItems);
  checkFilterLists(args.filter, maxItems, 'filter.');
  requireInboxes(principal, named, 'read');
  requireClient(principal, args.clientId ?? null);
}

/**
 * Turns `eventStream` arguments and the caller's visibility into the hub's {@link StreamSpec}.
 * `resumeAfter` (e.g. from `Last-Event-ID`) applies when the arguments carry no `after`, and wins
 * when it is the later of the two: an `EventSource` opened with `after` in its URL reconnects to
 * that same URL with the id of the last event it received, and replaying from the URL's older
 * cursor would repeat events.
 * @throws CursorError for a malformed cursor.
 */
export function toStreamSpec(
  args: EventStreamArgs,
  visibility: Visibility,
  resumeAfter: string | null = null,
): StreamSpec {
  const filter: EventFilter | null = toEventFilter(args.filter);
  const clientId = args.clientId ?? null;
  const clauses = [
    ...compileFilter(filter, { inboxes: args.inboxes ?? null, clients: clientId }),
    ...compileFilter(null, visibility),
  ];
  const cursors = [args.after, resumeAfter].filter((c): c is string => c != null);
  return {
    clauses,
    inboxes: exactInboxes(args.inboxes) ?? exactInboxes(filter?.inboxes),
    clientId,
    afterSeq: cursors.length === 0 ? null : Math.max(...cursors.map(decodeCursor)),
    requestedInboxes: args.inboxes ?? filter?.inboxes ?? null,
  };
}

builder.subscriptionType({
  fields: (t) => ({
    eventStream: t.field({
      type: EventType,
      description:
        "Live events. `inboxes` omitted: every inbox you may read. With `clientId`: the inboxes' broadcast events plus that client's targeted ones; without: broadcast only. `after`: replay stored events after that cursor, then continue live, with no gap and no duplicate.",
      args: {
        inboxes: t.arg.stringList(),
        clientId: t.arg.string(),
        filter: t.arg({ type: EventFilterInput }),
        after: t.arg.string(),
      },
      // Streams run on the stream engine (`stream/service.ts`), which executes this field once
      // per event with the event as its root: a subscription executed any other way (graphql-js
      // `subscribe()`, a server plugin) would escape presence and the limits, so it is refused.
      subscribe: () => {
        throw new GraphQLError(SUBSCRIPTION_REFUSAL, { extensions: { code: 'BAD_REQUEST' } });
      },
      resolve: (event: StoredEvent): StoredEvent => event,
    }),
  }),
});
