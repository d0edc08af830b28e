import { requireClient, requireInboxes, requireScope } from '../auth/principal.js';
import type { TidingsContext } from '../context.js';
import { LimitError } from '../errors.js';
import { decodeCursor } from '../events/cursor.js';
import { checkFilterLists, compileFilter } from '../events/filter.js';
import type { EventFilter, StoredEvent, Visibility } from '../events/types.js';
import type { StreamSpec } from '../hub/hub.js';
import { HistoryGapError } from '../errors.js';
import { iterateStream, type StreamItem } from '../hub/iterate.js';
import { builder } from './builder.js';
import { EventType } from './event.js';
import { EventFilterInput, toEventFilter, type EventFilterArg } from './inputs.js';

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
      subscribe: (_root, args, ctx) => {
        authorizeStream(args, ctx);
        return iterateStream(ctx.services.hub, toStreamSpec(args, ctx.visibility));
      },
      // A gap in the replayed history comes as an error in the stream, which goes on after it.
      resolve: (item: StreamItem): StoredEvent => {
        if (item instanceof HistoryGapError) throw item;
        return item;
      },
    }),
  }),
});
