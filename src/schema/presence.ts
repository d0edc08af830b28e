/**
 * Presence: the event streams open on this instance, for admins (which hosts are connected, and
 * how far behind each one is).
 */
import { requireScope } from '../auth/principal.js';
import type { OpenStreamInfo } from '../stream/types.js';
import { builder } from './builder.js';

const StreamModeEnum = builder.enumType('StreamMode', {
  description: 'How a stream is carried: the two modes of graphql-sse, or a graphql-ws socket.',
  values: {
    DISTINCT: { value: 'distinct', description: 'One connection per stream.' },
    SINGLE: {
      value: 'single',
      description: "One reserved connection carries several streams (the client's operations).",
    },
    WEBSOCKET: {
      value: 'websocket',
      description: 'A graphql-ws (graphql-transport-ws) socket, which may carry several streams.',
    },
  } as const,
});

const OpenStreamType = builder.objectRef<OpenStreamInfo>('OpenStream').implement({
  description: 'An `eventStream` open on this instance.',
  fields: (t) => ({
    id: t.exposeID('id', {
      description: 'Made up when the stream opened; its log lines carry it as `streamId`.',
    }),
    mode: t.field({ type: StreamModeEnum, resolve: (s) => s.mode }),
    subject: t.exposeString('subject', {
      nullable: true,
      description: "The caller's token subject; null without auth.",
    }),
    clientId: t.exposeString('clientId', {
      nullable: true,
      description: "The client id the stream asked for, else the caller's; null when neither.",
    }),
    inboxes: t.exposeStringList('inboxes', {
      nullable: true,
      description:
        'The inboxes the stream named (names and `prefix*` patterns); null: every inbox the caller may read.',
    }),
    since: t.field({ type: 'DateTime', description: 'When it opened.', resolve: (s) => s.since }),
    eventsDelivered: t.exposeInt('eventsDelivered', {
      description: 'Events written to it so far, replayed and live.',
    }),
    queueBytes: t.exposeInt('queueBytes', {
      description:
        'Bytes waiting to be sent on its connection (shared by every stream of a single connection); a stream stuck high is about to end as SLOW_CONSUMER.',
    }),
  }),
});

builder.queryField('streams', (t) =>
  t.field({
    type: [OpenStreamType],
    description:
      'Admin: the event streams open on this instance (each instance answers for its own), oldest first.',
    resolve: (_root, _args, ctx) => {
      requireScope(ctx.principal, 'events:admin', 'list the open streams');
      return ctx.services.streams.list();
    },
  }),
);
