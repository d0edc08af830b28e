import { parentAmong } from '../context.js';
import type { StoredEvent } from '../events/types.js';
import { builder } from './builder.js';
import { eventObjectFields } from './fields.js';

/** The `Event` object. */
export const EventType = builder.objectRef<StoredEvent>('Event');

EventType.implement({
  description: 'An immutable, stored event.',
  // The fields a publisher sends come from the table of event fields; those below are the
  // store's (its place in the stream) and the links between events.
  fields: (t) => ({
    ...eventObjectFields(t),
    cursor: t.exposeString('cursor', {
      description: 'Opaque stream position, increasing in delivery order; also the SSE `id:`.',
    }),
    receivedAt: t.field({
      type: 'DateTime',
      description: 'When Tidings stored it.',
      resolve: (e) => e.receivedAt,
    }),
    parent: t.field({
      type: EventType,
      nullable: true,
      description:
        'The parent event, if it exists and is visible to the caller: the event with id `parentId` in this inbox, else the oldest visible one with that id.',
      resolve: async (e, _args, ctx) =>
        e.parentId === null ? null : parentAmong(e, await ctx.loaders.eventsById.load(e.parentId)),
    }),
    children: t.field({
      type: [EventType],
      description:
        'Events whose `parent` is this event, oldest first, among those visible to the caller.',
      resolve: async (e, _args, ctx) => {
        const children = await ctx.loaders.childrenOf.load(e.id);
        // A child in another inbox may name a namesake of this event: keep it only when its
        // parent resolves to this one. Children in this inbox always do.
        if (children.every((c) => c.inbox === e.inbox)) return children;
        const namesakes = await ctx.loaders.eventsById.load(e.id);
        return children.filter(
          (c) => c.inbox === e.inbox || parentAmong(c, namesakes)?.seq === e.seq,
        );
      },
    }),
  }),
});
