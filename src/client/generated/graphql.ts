/* eslint-disable */
/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
import type { DocumentTypeDecoration } from '@graphql-typed-document-node/core';
/** Fields combine with AND, list entries with OR. `types` and `inboxes` entries match exactly, or by prefix when they end in `*`. */
export type EventFilter = {
  actions?: Array<string> | null | undefined;
  actor?: string | null | undefined;
  categories?: Array<string> | null | undefined;
  correlationId?: string | null | undefined;
  inboxes?: Array<string> | null | undefined;
  parentId?: string | number | null | undefined;
  resourceId?: string | null | undefined;
  resourceType?: string | null | undefined;
  severities?: Array<Severity> | null | undefined;
  /** Inclusive lower bound on `timestamp`. */
  since?: string | null | undefined;
  source?: string | null | undefined;
  types?: Array<string> | null | undefined;
  /** Exclusive upper bound on `timestamp`. */
  until?: string | null | undefined;
};

export type EventOrder =
  | 'NEWEST_FIRST'
  | 'OLDEST_FIRST';

/** An event to publish. Only `type` is required. */
export type PublishEventInput = {
  action?: string | null | undefined;
  actor?: string | null | undefined;
  body?: unknown;
  category?: string | null | undefined;
  /** Deliver only to this client's streams. */
  clientId?: string | null | undefined;
  correlationId?: string | null | undefined;
  /** Your own id makes the publish idempotent. Default: a UUIDv7. */
  id?: string | number | null | undefined;
  /** Default: `global`. */
  inbox?: string | null | undefined;
  message?: string | null | undefined;
  parentId?: string | number | null | undefined;
  resource?: ResourceInput | null | undefined;
  /** Default: `INFO`. */
  severity?: Severity | null | undefined;
  source?: string | null | undefined;
  /** When it happened. Default: now. */
  timestamp?: string | null | undefined;
  /** 1–128 characters of `[A-Za-z0-9_.:-]`. */
  type: string;
};

export type ResourceInput = {
  id: string;
  type: string;
};

/** How much an event matters, lowest first. */
export type Severity =
  | 'CRITICAL'
  | 'DEBUG'
  | 'ERROR'
  | 'INFO'
  | 'SUCCESS'
  | 'WARNING';

export type EventFieldsFragment = { id: string, cursor: string, type: string, inbox: string, clientId: string | null, timestamp: string, receivedAt: string, message: string | null, body: unknown, severity: Severity, category: string | null, action: string | null, actor: string | null, source: string | null, parentId: string | null, correlationId: string | null, resource: { type: string, id: string } | null };

export type PublishEventMutationVariables = Exact<{
  input: PublishEventInput;
}>;


export type PublishEventMutation = { publishEvent: { id: string, cursor: string, type: string, inbox: string, clientId: string | null, timestamp: string, receivedAt: string, message: string | null, body: unknown, severity: Severity, category: string | null, action: string | null, actor: string | null, source: string | null, parentId: string | null, correlationId: string | null, resource: { type: string, id: string } | null } };

export type PublishEventsMutationVariables = Exact<{
  inputs: Array<PublishEventInput> | PublishEventInput;
}>;


export type PublishEventsMutation = { publishEvents: Array<{ id: string, cursor: string, type: string, inbox: string, clientId: string | null, timestamp: string, receivedAt: string, message: string | null, body: unknown, severity: Severity, category: string | null, action: string | null, actor: string | null, source: string | null, parentId: string | null, correlationId: string | null, resource: { type: string, id: string } | null }> };

export type EventsQueryVariables = Exact<{
  filter?: EventFilter | null | undefined;
  first?: number | null | undefined;
  after?: string | null | undefined;
  last?: number | null | undefined;
  before?: string | null | undefined;
  order?: EventOrder | null | undefined;
}>;


export type EventsQuery = { events: { edges: Array<{ cursor: string, node: { id: string, cursor: string, type: string, inbox: string, clientId: string | null, timestamp: string, receivedAt: string, message: string | null, body: unknown, severity: Severity, category: string | null, action: string | null, actor: string | null, source: string | null, parentId: string | null, correlationId: string | null, resource: { type: string, id: string } | null } }>, pageInfo: { hasNextPage: boolean, hasPreviousPage: boolean, startCursor: string | null, endCursor: string | null } } };

export type EventQueryVariables = Exact<{
  id: string | number;
}>;


export type EventQuery = { event: { id: string, cursor: string, type: string, inbox: string, clientId: string | null, timestamp: string, receivedAt: string, message: string | null, body: unknown, severity: Severity, category: string | null, action: string | null, actor: string | null, source: string | null, parentId: string | null, correlationId: string | null, resource: { type: string, id: string } | null } | null };

export type EventTreeQueryVariables = Exact<{
  id: string | number;
}>;


export type EventTreeQuery = { event: { id: string, parent: { id: string, parent: { id: string } | null } | null, children: Array<{ id: string, children: Array<{ id: string }> }> } | null };

export type EventStreamSubscriptionVariables = Exact<{
  inboxes?: Array<string> | string | null | undefined;
  clientId?: string | null | undefined;
  filter?: EventFilter | null | undefined;
  after?: string | null | undefined;
}>;


export type EventStreamSubscription = { eventStream: { id: string, cursor: string, type: string, inbox: string, clientId: string | null, timestamp: string, receivedAt: string, message: string | null, body: unknown, severity: Severity, category: string | null, action: string | null, actor: string | null, source: string | null, parentId: string | null, correlationId: string | null, resource: { type: string, id: string } | null } };

export class TypedDocumentString<TResult, TVariables>
  extends String
  implements DocumentTypeDecoration<TResult, TVariables>
{
  __apiType?: NonNullable<DocumentTypeDecoration<TResult, TVariables>['__apiType']>;
  private value: string;
  public __meta__?: Record<string, any> | undefined;

  constructor(value: string, __meta__?: Record<string, any> | undefined) {
    super(value);
    this.value = value;
    this.__meta__ = __meta__;
  }

  override toString(): string & DocumentTypeDecoration<TResult, TVariables> {
    return this.value;
  }
}
export const EventFieldsFragmentDoc = new TypedDocumentString(`
    fragment EventFields on Event {
  id
  cursor
  type
  inbox
  clientId
  timestamp
  receivedAt
  message
  body
  severity
  category
  action
  resource {
    type
    id
  }
  actor
  source
  parentId
  correlationId
}
    `, {"fragmentName":"EventFields"}) as unknown as TypedDocumentString<EventFieldsFragment, unknown>;
export const PublishEventDocument = new TypedDocumentString(`
    mutation PublishEvent($input: PublishEventInput!) {
  publishEvent(input: $input) {
    ...EventFields
  }
}
    fragment EventFields on Event {
  id
  cursor
  type
  inbox
  clientId
  timestamp
  receivedAt
  message
  body
  severity
  category
  action
  resource {
    type
    id
  }
  actor
  source
  parentId
  correlationId
}`) as unknown as TypedDocumentString<PublishEventMutation, PublishEventMutationVariables>;
export const PublishEventsDocument = new TypedDocumentString(`
    mutation PublishEvents($inputs: [PublishEventInput!]!) {
  publishEvents(inputs: $inputs) {
    ...EventFields
  }
}
    fragment EventFields on Event {
  id
  cursor
  type
  inbox
  clientId
  timestamp
  receivedAt
  message
  body
  severity
  category
  action
  resource {
    type
    id
  }
  actor
  source
  parentId
  correlationId
}`) as unknown as TypedDocumentString<PublishEventsMutation, PublishEventsMutationVariables>;
export const EventsDocument = new TypedDocumentString(`
    query Events($filter: EventFilter, $first: Int, $after: String, $last: Int, $before: String, $order: EventOrder) {
  events(
    filter: $filter
    first: $first
    after: $after
    last: $last
    before: $before
    order: $order
  ) {
    edges {
      cursor
      node {
        ...EventFields
      }
    }
    pageInfo {
      hasNextPage
      hasPreviousPage
      startCursor
      endCursor
    }
  }
}
    fragment EventFields on Event {
  id
  cursor
  type
  inbox
  clientId
  timestamp
  receivedAt
  message
  body
  severity
  category
  action
  resource {
    type
    id
  }
  actor
  source
  parentId
  correlationId
}`) as unknown as TypedDocumentString<EventsQuery, EventsQueryVariables>;
export const EventDocument = new TypedDocumentString(`
    query Event($id: ID!) {
  event(id: $id) {
    ...EventFields
  }
}
    fragment EventFields on Event {
  id
  cursor
  type
  inbox
  clientId
  timestamp
  receivedAt
  message
  body
  severity
  category
  action
  resource {
    type
    id
  }
  actor
  source
  parentId
  correlationId
}`) as unknown as TypedDocumentString<EventQuery, EventQueryVariables>;
export const EventTreeDocument = new TypedDocumentString(`
    query EventTree($id: ID!) {
  event(id: $id) {
    id
    parent {
      id
      parent {
        id
      }
    }
    children {
      id
      children {
        id
      }
    }
  }
}
    `) as unknown as TypedDocumentString<EventTreeQuery, EventTreeQueryVariables>;
export const EventStreamDocument = new TypedDocumentString(`
    subscription EventStream($inboxes: [String!], $clientId: String, $filter: EventFilter, $after: String) {
  eventStream(
    inboxes: $inboxes
    clientId: $clientId
    filter: $filter
    after: $after
  ) {
    ...EventFields
  }
}
    fragment EventFields on Event {
  id
  cursor
  type
  inbox
  clientId
  timestamp
  receivedAt
  message
  body
  severity
  category
  action
  resource {
    type
    id
  }
  actor
  source
  parentId
  correlationId
}`) as unknown as TypedDocumentString<EventStreamSubscription, EventStreamSubscriptionVariables>;