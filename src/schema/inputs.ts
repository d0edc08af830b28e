import type { EventFilter } from '../events/types.js';
import { SeverityEnum } from './event.js';
import { builder } from './builder.js';

/** `ResourceInput`: the resource of a published event. */
export const ResourceInput = builder.inputType('ResourceInput', {
  fields: (t) => ({
    type: t.string({ required: true }),
    id: t.string({ required: true }),
  }),
});

/** `PublishEventInput`: what a publisher sends. */
export const PublishEventInput = builder.inputType('PublishEventInput', {
  description: 'An event to publish. Only `type` is required.',
  fields: (t) => ({
    id: t.id({
      description:
        'Your own id makes the publish idempotent within the inbox: the same id in another inbox is another event. Default: a UUIDv7.',
    }),
    type: t.string({ required: true, description: '1–128 characters of `[A-Za-z0-9_.:-]`.' }),
    inbox: t.string({ description: 'Default: `global`.' }),
    clientId: t.string({ description: "Deliver only to this client's streams." }),
    message: t.string(),
    body: t.field({ type: 'JSON' }),
    severity: t.field({ type: SeverityEnum, description: 'Default: `INFO`.' }),
    category: t.string(),
    action: t.string(),
    resource: t.field({ type: ResourceInput }),
    actor: t.string(),
    source: t.string(),
    parentId: t.id(),
    correlationId: t.string(),
    timestamp: t.field({ type: 'DateTime', description: 'When it happened. Default: now.' }),
  }),
});

/** `EventFilter`: shared by the `events` query and the `eventStream` subscription. */
export const EventFilterInput = builder.inputType('EventFilter', {
  description:
    'Fields combine with AND, list entries with OR. `types` and `inboxes` entries match exactly, or by prefix when they end in `*`.',
  fields: (t) => ({
    inboxes: t.stringList(),
    types: t.stringList(),
    severities: t.field({ type: [SeverityEnum] }),
    categories: t.stringList(),
    actions: t.stringList(),
    resourceType: t.string(),
    resourceId: t.string(),
    actor: t.string(),
    source: t.string(),
    correlationId: t.string(),
    parentId: t.id(),
    since: t.field({ type: 'DateTime', description: 'Inclusive lower bound on `timestamp`.' }),
    until: t.field({ type: 'DateTime', description: 'Exclusive upper bound on `timestamp`.' }),
  }),
});

/** `EventOrder`: the order of the `events` connection. */
export const EventOrderEnum = builder.enumType('EventOrder', {
  values: {
    NEWEST_FIRST: { value: 'NEWEST_FIRST' },
    OLDEST_FIRST: { value: 'OLDEST_FIRST' },
  } as const,
});

/** The GraphQL `EventFilter` input as it reaches resolvers. */
export type EventFilterArg = typeof EventFilterInput.$inferInput;

/** Converts the GraphQL filter input to the domain filter (dates become epoch milliseconds). */
export function toEventFilter(input: EventFilterArg | null | undefined): EventFilter | null {
  if (!input) return null;
  const { since, until, ...rest } = input;
  return { ...rest, since: since ? since.getTime() : null, until: until ? until.getTime() : null };
}
