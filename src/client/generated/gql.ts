/* eslint-disable */
import * as types from './graphql.js';



/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "fragment EventFields on Event {\n  id\n  cursor\n  type\n  inbox\n  clientId\n  timestamp\n  receivedAt\n  message\n  body\n  severity\n  category\n  action\n  resource {\n    type\n    id\n  }\n  actor\n  source\n  parentId\n  correlationId\n}\n\nmutation PublishEvent($input: PublishEventInput!) {\n  publishEvent(input: $input) {\n    ...EventFields\n  }\n}\n\nmutation PublishEvents($inputs: [PublishEventInput!]!) {\n  publishEvents(inputs: $inputs) {\n    ...EventFields\n  }\n}\n\nquery Events($filter: EventFilter, $first: Int, $after: String, $last: Int, $before: String, $order: EventOrder) {\n  events(\n    filter: $filter\n    first: $first\n    after: $after\n    last: $last\n    before: $before\n    order: $order\n  ) {\n    edges {\n      cursor\n      node {\n        ...EventFields\n      }\n    }\n    pageInfo {\n      hasNextPage\n      hasPreviousPage\n      startCursor\n      endCursor\n    }\n  }\n}\n\nquery Event($id: ID!) {\n  event(id: $id) {\n    ...EventFields\n  }\n}\n\nquery EventTree($id: ID!) {\n  event(id: $id) {\n    id\n    parent {\n      id\n      parent {\n        id\n      }\n    }\n    children {\n      id\n      children {\n        id\n      }\n    }\n  }\n}\n\nsubscription EventStream($inboxes: [String!], $clientId: String, $filter: EventFilter, $after: String) {\n  eventStream(\n    inboxes: $inboxes\n    clientId: $clientId\n    filter: $filter\n    after: $after\n  ) {\n    ...EventFields\n  }\n}": typeof types.EventFieldsFragmentDoc,
};
const documents: Documents = {
    "fragment EventFields on Event {\n  id\n  cursor\n  type\n  inbox\n  clientId\n  timestamp\n  receivedAt\n  message\n  body\n  severity\n  category\n  action\n  resource {\n    type\n    id\n  }\n  actor\n  source\n  parentId\n  correlationId\n}\n\nmutation PublishEvent($input: PublishEventInput!) {\n  publishEvent(input: $input) {\n    ...EventFields\n  }\n}\n\nmutation PublishEvents($inputs: [PublishEventInput!]!) {\n  publishEvents(inputs: $inputs) {\n    ...EventFields\n  }\n}\n\nquery Events($filter: EventFilter, $first: Int, $after: String, $last: Int, $before: String, $order: EventOrder) {\n  events(\n    filter: $filter\n    first: $first\n    after: $after\n    last: $last\n    before: $before\n    order: $order\n  ) {\n    edges {\n      cursor\n      node {\n        ...EventFields\n      }\n    }\n    pageInfo {\n      hasNextPage\n      hasPreviousPage\n      startCursor\n      endCursor\n    }\n  }\n}\n\nquery Event($id: ID!) {\n  event(id: $id) {\n    ...EventFields\n  }\n}\n\nquery EventTree($id: ID!) {\n  event(id: $id) {\n    id\n    parent {\n      id\n      parent {\n        id\n      }\n    }\n    children {\n      id\n      children {\n        id\n      }\n    }\n  }\n}\n\nsubscription EventStream($inboxes: [String!], $clientId: String, $filter: EventFilter, $after: String) {\n  eventStream(\n    inboxes: $inboxes\n    clientId: $clientId\n    filter: $filter\n    after: $after\n  ) {\n    ...EventFields\n  }\n}": types.EventFieldsFragmentDoc,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "fragment EventFields on Event {\n  id\n  cursor\n  type\n  inbox\n  clientId\n  timestamp\n  receivedAt\n  message\n  body\n  severity\n  category\n  action\n  resource {\n    type\n    id\n  }\n  actor\n  source\n  parentId\n  correlationId\n}\n\nmutation PublishEvent($input: PublishEventInput!) {\n  publishEvent(input: $input) {\n    ...EventFields\n  }\n}\n\nmutation PublishEvents($inputs: [PublishEventInput!]!) {\n  publishEvents(inputs: $inputs) {\n    ...EventFields\n  }\n}\n\nquery Events($filter: EventFilter, $first: Int, $after: String, $last: Int, $before: String, $order: EventOrder) {\n  events(\n    filter: $filter\n    first: $first\n    after: $after\n    last: $last\n    before: $before\n    order: $order\n  ) {\n    edges {\n      cursor\n      node {\n        ...EventFields\n      }\n    }\n    pageInfo {\n      hasNextPage\n      hasPreviousPage\n      startCursor\n      endCursor\n    }\n  }\n}\n\nquery Event($id: ID!) {\n  event(id: $id) {\n    ...EventFields\n  }\n}\n\nquery EventTree($id: ID!) {\n  event(id: $id) {\n    id\n    parent {\n      id\n      parent {\n        id\n      }\n    }\n    children {\n      id\n      children {\n        id\n      }\n    }\n  }\n}\n\nsubscription EventStream($inboxes: [String!], $clientId: String, $filter: EventFilter, $after: String) {\n  eventStream(\n    inboxes: $inboxes\n    clientId: $clientId\n    filter: $filter\n    after: $after\n  ) {\n    ...EventFields\n  }\n}"): typeof import('./graphql.js').EventFieldsFragmentDoc;


export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}
