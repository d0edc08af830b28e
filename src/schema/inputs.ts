import type { EventFilter } from '../events/types.js';
import { builder } from './builder.js';
import { SeverityEnum, publishInputFields } from './fields.js';

/** `PublishEventInput`: what a publisher sends, as the table of event fields declares it. */
export const PublishEventInput = builder.inputType('PublishEventInput', {
  description: 'An event to publish. Only `type` is required.',
  fields: publishInputFields,
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
