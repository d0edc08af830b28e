import type { PublishEventInput as PublishInput } from '../events/validate.js';
import { builder } from './builder.js';
import { EventType } from './event.js';
import { PublishEventInput } from './inputs.js';

builder.mutationType({
  fields: (t) => ({
    publishEvent: t.field({
      type: EventType,
      description:
        'Publish one event. Resolves once it is durably stored; the same `id` twice gives one event.',
      args: { input: t.arg({ type: PublishEventInput, required: true }) },
      resolve: async (_root, args, ctx) => {
        const [event] = await ctx.services.publish([args.input as PublishInput]);
        return event as NonNullable<typeof event>;
      },
    }),
    publishEvents: t.field({
      type: [EventType],
      description: 'Publish a batch atomically: all events are stored, or none is.',
      args: { inputs: t.arg({ type: [PublishEventInput], required: true }) },
      resolve: (_root, args, ctx) => ctx.services.publish(args.inputs as PublishInput[]),
    }),
  }),
});
