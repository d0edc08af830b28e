import { requireInboxes, requireScope } from '../auth/principal.js';
import { ValidationError } from '../errors.js';
import { decodeCursor } from '../events/cursor.js';
import { checkFilterLists, compileFilter } from '../events/filter.js';
import type { StoredEvent } from '../events/types.js';
import type { Page } from '../store/types.js';
import { builder } from './builder.js';
import { EventType } from './event.js';
import { EventFilterInput, EventOrderEnum, toEventFilter } from './inputs.js';

const PageInfoType = builder.objectRef<Page>('PageInfo').implement({
  description: 'Relay page info.',
  fields: (t) => ({
    hasNextPage: t.exposeBoolean('hasNextPage'),
    hasPreviousPage: t.exposeBoolean('hasPreviousPage'),
    startCursor: t.string({ nullable: true, resolve: (p) => p.events[0]?.cursor ?? null }),
    endCursor: t.string({ nullable: true, resolve: (p) => p.events.at(-1)?.cursor ?? null }),
  }),
});

const EventEdgeType = builder.objectRef<StoredEvent>('EventEdge').implement({
  fields: (t) => ({
    cursor: t.exposeString('cursor'),
    node: t.field({ type: EventType, resolve: (e) => e }),
  }),
});

const EventConnectionType = builder.objectRef<Page>('EventConnection').implement({
  description: 'A page of events (Relay connection).',
  fields: (t) => ({
    edges: t.field({ type: [EventEdgeType], resolve: (p) => p.events }),
    nodes: t.field({ type: [EventType], resolve: (p) => p.events }),
    pageInfo: t.field({ type: PageInfoType, resolve: (p) => p }),
  }),
});

function pageSize(name: string, value: number | null | undefined, max: number): number | null {
  if (value == null) return null;
  if (value < 0 || value > max) {
    throw new ValidationError(
      `[query] ${name} must be between 0 and ${max}, got ${value}: page through larger results`,
    );
  }
  return value;
}

builder.queryType({
  fields: (t) => ({
    events: t.field({
      type: EventConnectionType,
      description:
        'Search the history. Newest first by default; page forward with `first`/`after`, backward with `last`/`before`.',
      args: {
        filter: t.arg({ type: EventFilterInput }),
        first: t.arg.int(),
        after: t.arg.string(),
        last: t.arg.int(),
        before: t.arg.string(),
        order: t.arg({ type: EventOrderEnum, defaultValue: 'NEWEST_FIRST', required: true }),
      },
      resolve: (_root, args, ctx) => {
        requireScope(ctx.principal, 'events:read', 'read events');
        const maxItems = ctx.services.maxFilterItems;
        checkFilterLists(args.filter, maxItems, 'filter.');
        requireInboxes(ctx.principal, args.filter?.inboxes ?? [], 'read');
        const max = ctx.services.maxPageSize;
        const first = pageSize('first', args.first, max);
        const last = pageSize('last', args.last, max);
        if (first !== null && last !== null) {
          throw new ValidationError('[query] pass either first or last, not both');
        }
        return ctx.services.store.page({
          clauses: compileFilter(toEventFilter(args.filter), ctx.visibility),
          order: args.order,
          first: first ?? (last === null ? Math.min(50, max) : null),
          last,
          afterSeq: args.after == null ? null : decodeCursor(args.after),
          beforeSeq: args.before == null ? null : decodeCursor(args.before),
        });
      },
    }),
    event: t.field({
      type: EventType,
      nullable: true,
      description:
        'One event by id, if it exists and is visible to the caller. Ids are unique within an inbox: when the caller can read events with this id in several inboxes, the oldest one.',
      args: { id: t.arg.id({ required: true }) },
      resolve: async (_root, args, ctx) => {
        requireScope(ctx.principal, 'events:read', 'read events');
        // Only visible events are candidates, so the answer says nothing of other inboxes.
        const [oldest] = await ctx.loaders.eventsById.load(String(args.id));
        return oldest ?? null;
      },
    }),
  }),
});
