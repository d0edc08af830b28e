import { requireInboxes, requireScope } from '../auth/principal.js';
import { LOG_LEVELS } from '../config.js';
import { ValidationError } from '../errors.js';
import type { TidingsContext } from '../context.js';
import { GLOBAL_INBOX } from '../events/types.js';
import type { PublishEventInput as PublishInput } from '../events/validate.js';
import { requireCapability } from '../store/index.js';
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
    ctx.services.publishLimiter.take(principal.subject, inputs.length);
  return ctx.services.publish(inputs);
}

/** Throws unless exactly the allowed one-of arguments are given. */
function oneTarget(
  action: string,
  subject: string | null | undefined,
  other: [string, string | null | undefined],
) {
  if ((subject == null) === (other[1] == null)) {
    throw new ValidationError(
      `[auth] ${action}: give either subject or ${other[0]}, not both nor neither`,
    );
  }
}

const LogLevelEnum = builder.enumType('LogLevel', {
  description: 'A pino log level.',
  values: LOG_LEVELS.map((l) => l.toUpperCase()) as Uppercase<(typeof LOG_LEVELS)[number]>[],
});

builder.mutationType({
  fields: (t) => ({
    setLogLevel: t.field({
      type: LogLevelEnum,
      description:
        "Admin: changes this instance's log level at once, until it restarts (LOG_LEVEL sets it at start). Returns the previous level.",
      args: { level: t.arg({ type: LogLevelEnum, required: true }) },
      resolve: (_root, args, ctx) => {
        requireScope(ctx.principal, 'events:admin', 'change the log level');
        const previous = ctx.services.setLogLevel(
          args.level.toLowerCase() as (typeof LOG_LEVELS)[number],
        );
        return previous.toUpperCase() as typeof args.level;
      },
    }),
    endStreams: t.int({
      description:
        'Admin: ends every open stream of a subject, or of a client, with a STREAM_ENDED error, on every instance. Returns how many ended on this one. The caller can reconnect unless its token is also revoked.',
      args: { subject: t.arg.string(), clientId: t.arg.string() },
      resolve: (_root, args, ctx) => {
        requireScope(ctx.principal, 'events:admin', 'end streams');
        oneTarget('endStreams', args.subject, ['clientId', args.clientId]);
        const cut =
          args.subject != null ? { subject: args.subject } : { clientId: args.clientId as string };
        return ctx.services.cutOff({ reason: 'end', ...cut });
      },
    }),
    revokeToken: t.int({
      description:
        'Admin: revokes one token (by `jti`) or every token of a subject issued until now, in the store, so every instance refuses it from now on, and ends its open streams on every instance with TOKEN_REVOKED. Returns how many ended on this one.',
      args: { jti: t.arg.string(), subject: t.arg.string() },
      resolve: async (_root, args, ctx) => {
        requireScope(ctx.principal, 'events:admin', 'revoke tokens');
        oneTarget('revokeToken', args.subject, ['jti', args.jti]);
        const at = Date.now();
        const revocations = requireCapability(ctx.services.store, 'revocations', 'revokeToken');
        await revocations.revoke(
          args.jti != null
            ? { kind: 'token', value: args.jti, at }
            : { kind: 'subject', value: args.subject as string, at },
        );
        const cut = args.jti != null ? { tokenId: args.jti } : { subject: args.subject as string };
        return ctx.services.cutOff({ reason: 'revoke', ...cut });
      },
    }),
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
