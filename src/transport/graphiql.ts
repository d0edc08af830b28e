/**
 * GraphiQL, served at `GET /graphql` to browsers (`Accept: text/html`). The page is rendered once
 * by `@graphql-yoga/render-graphiql`, which inlines GraphiQL's script, styles, fonts and workers:
 * it loads nothing from another host. Its subscriptions use graphql-sse on `/graphql`; its queries
 * and mutations go to the same `/graphql` as every other client.
 */
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';

/**
 * The tabs GraphiQL opens with (when the browser has none saved): a live subscription, and a
 * publish mutation whose events appear in the first tab.
 */
const GRAPHIQL_TABS = [
  {
    query: `# Run ▶, then run the Publish tab: events appear here.
subscription Live {
  eventStream(inboxes: ["global"]) {
    cursor
    type
    inbox
    severity
    message
    body
    timestamp
  }
}
`,
  },
  {
    query: `# Run ▶: the event appears in the Live tab.
mutation Publish($event: PublishEventInput!) {
  publishEvent(input: $event) {
    id
    cursor
    timestamp
  }
}
`,
    variables: `{
  "event": {
    "type": "demo.hello",
    "message": "Hello from GraphiQL",
    "severity": "SUCCESS"
  }
}
`,
  },
];

/** What a new GraphiQL tab opens with: a look at the history. */
const GRAPHIQL_NEW_TAB = `# The 20 newest events; for the next page, pass after: <pageInfo.endCursor>.
query History {
  events(first: 20) {
    edges {
      node {
        cursor
        type
        inbox
        severity
        message
        timestamp
      }
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
`;

/** Whether a request asks for the GraphiQL page: a `GET` that accepts HTML, in any case. */
export function wantsGraphiQL(method: string | undefined, accept: string | undefined): boolean {
  return method === 'GET' && (accept ?? '').toLowerCase().includes('text/html');
}

let page: string | undefined;

/** The GraphiQL page of Tidings (rendered on first use, then kept). */
export function graphiqlPage(): string {
  page ??= renderGraphiQL({
    title: 'Tidings',
    endpoint: '/graphql',
    subscriptionsProtocol: 'GRAPHQL_SSE',
    defaultTabs: GRAPHIQL_TABS,
    defaultQuery: GRAPHIQL_NEW_TAB,
  });
  return page;
}
