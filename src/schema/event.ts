import { parentAmong } from '../context.js';
import { SEVERITIES, type ResourceRef, type StoredEvent } from '../events/types.js';
import { builder } from './builder.js';

/** The `Severity` enum. */
export const SeverityEnum = builder.enumType('Severity', {
  description: 'How much an event matters, lowest first.',
  values: SEVERITIES,
});

/** The `ResourceRef` object: what an event is about. */
export const ResourceRefType = builder.objectRef<ResourceRef>('ResourceRef').implement({
  description: 'A reference to the thing an event is about.',
  fields: (t) => ({
    type: t.exposeString('type', { description: 'Kind of resource, e.g. `vm`.' }),
    id: t.exposeString('id', { description: "The resource's identifier." }),
  }),
});

/** The `Event` object. */
export const EventType = builder.objectRef<StoredEvent>('Event');

EventType.implement({
  description: 'An immutable, stored event.',
  fields: (t) => ({
    id: t.exposeID('id', {
      description:
        'UUIDv7 unless the publisher supplied its own. Unique within its inbox: another inbox may hold an event with the same id.',
    }),
    cursor: t.exposeString('cursor', {
      description: 'Opaque stream position, increasing in delivery order; also the SSE `id:`.',
    }),
    type: t.exposeString('type', { description: 'e.g. `vm.state_changed`.' }),
    inbox: t.exposeString('inbox', { description: 'The channel; `global` when none was named.' }),
    clientId: t.exposeString('clientId', {
      nullable: true,
      description: "Set: only that client's streams receive it. Unset: everyone reading the inbox.",
    }),
    timestamp: t.field({
      type: 'DateTime',
      description: 'When it happened (the publisher may set it).',
      resolve: (e) => e.timestamp,
    }),
    receivedAt: t.field({
      type: 'DateTime',
      description: 'When Tidings stored it.',
      resolve: (e) => e.receivedAt,
    }),
    message: t.exposeString('message', { nullable: true, description: 'Human text.' }),
    body: t.field({
      type: 'JSON',
      nullable: true,
      description: 'Payload: stored and returned as is, never indexed.',
      resolve: (e) => e.body,
    }),
    severity: t.field({ type: SeverityEnum, resolve: (e) => e.severity }),
    category: t.exposeString('category', { nullable: true, description: 'e.g. `connection`.' }),
    action: t.exposeString('action', { nullable: true, description: 'e.g. `register`.' }),
    resource: t.field({
      type: ResourceRefType,
      nullable: true,
      description: 'What was acted upon.',
      resolve: (e) => e.resource,
    }),
    actor: t.exposeString('actor', { nullable: true, description: 'The user who caused it.' }),
    source: t.exposeString('source', {
      nullable: true,
      description: 'The system that emitted it.',
    }),
    parentId: t.exposeID('parentId', {
      nullable: true,
      description: 'The event this one answers.',
    }),
    correlationId: t.exposeString('correlationId', { nullable: true }),
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
