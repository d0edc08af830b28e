import { requireInboxes, requireScope } from '../auth/principal.js';
import type { TidingsContext } from '../context.js';
import { GLOBAL_INBOX } from '../events/types.js';
import type { PublishEventInput as PublishInput } from '../events/validate.js';
import { builder } from './builder.js';
import { EventType } from './event.js';
import { PublishEventInput } from './inputs.js';

/**
 * Publishes for the caller: the `events:publish` scope, inboxes within its `inboxes` claim, and
 * its publish rate; all checked before anything is stored.
 */
function publishFor(ctx: TidingsContext, inputs: PublishInput[]) {
  const { principal } = ctx;
  requireScope(principal, 'events:publish', 'publish events');
  requireInboxes(
    principal,
    inputs.map((i) => (typeof i.inbox === 'string' ? i.inbox : GLOBAL_INBOX)),
    'publish to',
  );
  if (principal.subject !== null)
    ctx.services.publishLimiter?.take(principal.subject, inputs.length);
  return ctx.services.publish(inputs);
}

builder.mutationType({
  fields: (t) => ({
    publishEvent: t.field({
      type: EventType,
      description:
        'Publish one event. Resolves once it is durably stored; the same `id` twice gives one event.',
      args: { input: t.arg({ type: PublishEventInput, required: true }) },
      resolve: async (_root, args, ctx) => {
        const [event] = await publishFor(ctx, [args.input as PublishInput]);
        return event as NonNullable<typeof event>;
      },
    }),
    publishEvents: t.field({
      type: [EventType],
      description: 'Publish a batch atomically: all events are stored, or none is.',
      args: { inputs: t.arg({ type: [PublishEventInput], required: true }) },
      resolve: (_root, args, ctx) => publishFor(ctx, args.inputs as PublishInput[]),
    }),
  }),
});
