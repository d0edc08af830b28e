import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type TidingsApp } from '../../src/app.js';
import { UNAUTHENTICATED_ADMIN } from '../../src/auth/principal.js';
import { createContext } from '../../src/context.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import type { EventStore } from '../../src/store/types.js';
import { MASKED_MESSAGE } from '../../src/transport/errors.js';
import { createHttpExecutor, negotiateJson } from '../../src/transport/execute-http.js';
import { createRequestListener } from '../../src/transport/http.js';
import { tserver, type TServer } from '../tserver.js';

let s: TServer;
beforeAll(async () => {
  s = await tserver();
});
afterAll(() => s.stop());

const JSON_TYPE = 'application/json; charset=utf-8';
const GRAPHQL_RESPONSE_TYPE = 'application/graphql-response+json; charset=utf-8';

async function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = { accept: 'application/json' },
) {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return {
    status: res.status,
    type: res.headers.get('content-type'),
    headers: res.headers,
    text,
    json: text ? (JSON.parse(text) as Record<string, unknown>) : null,
  };
}

const PUBLISH =
  'mutation { publishEvent(input: { type: "http.check", inbox: "h" }) { type inbox } }';

// What GraphQL over HTTP (and graphql-yoga before the fast path) answers, pinned: with
// `application/json`, 200 whatever the GraphQL errors; with `application/graphql-response+json`,
// 400 for request errors (parse, validation, variables) and 200 once execution started.
describe('GraphQL over HTTP POST', () => {
  it('should run a mutation and answer 200 in the media type asked for', async () => {
    for (const [accept, type] of [
      ['application/json', JSON_TYPE],
      ['application/graphql-response+json', GRAPHQL_RESPONSE_TYPE],
      ['*/*', JSON_TYPE],
      ['', JSON_TYPE],
      ['application/*', JSON_TYPE],
      ['application/graphql-response+json, application/json', GRAPHQL_RESPONSE_TYPE],
      ['application/json;q=0.5, application/graphql-response+json', JSON_TYPE],
      ['multipart/mixed, application/graphql-response+json', GRAPHQL_RESPONSE_TYPE],
      [
        'application/json; charset=latin1, application/graphql-response+json',
        GRAPHQL_RESPONSE_TYPE,
      ],
    ]) {
      const res = await post(s.url, { query: PUBLISH }, { accept: accept as string });
      expect([accept, res.status, res.type]).toEqual([accept, 200, type]);
      expect(res.json).toEqual({ data: { publishEvent: { type: 'http.check', inbox: 'h' } } });
      expect(res.headers.get('content-length')).toBe(String(Buffer.byteLength(res.text)));
    }
  });

  it('should take variables, operationName and extensions', async () => {
    const res = await post(s.url, {
      query: `query Other { __typename }
        mutation Pub($e: PublishEventInput!) { publishEvent(input: $e) { message } }`,
      variables: { e: { type: 'http.vars', message: 'hello' } },
      operationName: 'Pub',
      extensions: { some: 'thing' },
    });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ data: { publishEvent: { message: 'hello' } } });
  });

  it('should answer parse and validation errors with 200 for application/json, 400 for application/graphql-response+json', async () => {
    for (const [query, code] of [
      ['{ __typen', 'GRAPHQL_PARSE_FAILED'],
      ['{ nope }', 'GRAPHQL_VALIDATION_FAILED'],
    ] as const) {
      const asJson = await post(s.url, { query });
      expect([asJson.status, asJson.type]).toEqual([200, JSON_TYPE]);
      expect(asJson.json).toMatchObject({ errors: [{ extensions: { code } }] });
      const asGraphQL = await post(
        s.url,
        { query },
        { accept: 'application/graphql-response+json' },
      );
      expect([asGraphQL.status, asGraphQL.type]).toEqual([400, GRAPHQL_RESPONSE_TYPE]);
      expect(asGraphQL.json).toMatchObject({ errors: [{ extensions: { code } }] });
    }
  });

  it('should answer variables that do not coerce with 400, like yoga', async () => {
    const query = 'query($n: Int!) { events(first: $n) { edges { cursor } } }';
    for (const [accept, type] of [
      ['application/json', JSON_TYPE],
      ['application/graphql-response+json', GRAPHQL_RESPONSE_TYPE],
    ]) {
      const res = await post(s.url, { query, variables: { n: 'x' } }, { accept: accept as string });
      expect([res.status, res.type]).toEqual([400, type]);
      expect(res.json).toMatchObject({ errors: [{ message: expect.stringMatching(/\$n/) }] });
    }
  });

  it('should answer execution errors with 200 and data, for both media types', async () => {
    for (const accept of ['application/json', 'application/graphql-response+json']) {
      const res = await post(
        s.url,
        { query: '{ events(after: "zz") { edges { cursor } } }' },
        { accept },
      );
      expect(res.status).toBe(200);
      expect(res.json).toEqual({
        errors: [expect.objectContaining({ path: ['events'], extensions: { code: 'BAD_CURSOR' } })],
        data: null,
      });
    }
  });

  it('should answer request errors in the parameters like yoga', async () => {
    const cases: [unknown, number, RegExp][] = [
      [{ variables: {} }, 200, /Must provide query string/],
      [{ query: 5 }, 400, /"query" param to be a string/],
      [{ query: '{ __typename }', variables: 'x' }, 400, /"variables" param/],
      [{ query: '{ __typename }', variables: [1] }, 400, /"variables" param/],
      [{ query: '{ __typename }', extensions: 'x' }, 400, /"extensions" param/],
      [{ query: '{ __typename }', operationName: 5 }, 400, /Could not determine/],
      [{ query: '{ __typename }', operationName: 'X' }, 400, /Could not determine/],
      [{ query: 'query A { __typename } query B { __typename }' }, 400, /Could not determine/],
      [{ query: '{ __typename }', foo: 1 }, 400, /Unexpected parameter "foo"/],
      [[{ query: '{ __typename }' }], 400, /Batching is not supported/],
      ['"x"', 400, /expected to be object/],
      ['null', 400, /expected to be object/],
      ['', 400, /invalid JSON/],
      ['{"query": "{', 400, /invalid JSON/],
    ];
    for (const [body, status, message] of cases) {
      const res = await post(s.url, body);
      expect([JSON.stringify(body), res.status, res.type]).toEqual([
        JSON.stringify(body),
        status,
        JSON_TYPE,
      ]);
      expect((res.json?.errors as { message: string }[])[0]?.message).toMatch(message);
    }
  });

  it('should accept null variables, operationName and extensions', async () => {
    const res = await post(s.url, {
      query: '{ __typename }',
      variables: null,
      operationName: null,
      extensions: null,
    });
    expect([res.status, res.json]).toEqual([200, { data: { __typename: 'Query' } }]);
  });

  it('should refuse a subscription with 406, saying to use Accept: text/event-stream', async () => {
    const res = await post(s.url, { query: 'subscription { eventStream { cursor } }' });
    expect(res.status).toBe(406);
    expect(res.headers.get('accept')).toBe('text/event-stream');
    expect(res.json).toMatchObject({
      errors: [{ message: expect.stringContaining('Accept: text/event-stream') }],
    });
  });

  it('should leave what it cannot answer in JSON to yoga', async () => {
    const html = await post(s.url, { query: '{ __typename }' }, { accept: 'text/html' });
    expect(html.status).toBe(406);
  });

  it('should mask unexpected errors and log them', async () => {
    const inner = createSqliteStore({ path: ':memory:' });
    const failing: EventStore = {
      ...inner,
      kind: inner.kind,
      page: () => Promise.reject(new Error('secret details')),
    };
    const other = await tserver({}, { store: failing });
    try {
      const res = await post(other.url, { query: '{ events { edges { cursor } } }' });
      expect(res.status).toBe(200);
      expect(res.json).toEqual({
        errors: [
          expect.objectContaining({
            message: MASKED_MESSAGE,
            extensions: { code: 'INTERNAL_SERVER_ERROR' },
          }),
        ],
        data: null,
      });
      expect(res.text).not.toContain('secret');
    } finally {
      await other.stop();
    }
  });
});

describe('the fast path', () => {
  let app: TidingsApp;
  let server: Server;
  let url: string;
  /** Bodies of the requests that reached the stand-in for yoga. */
  const toYoga: string[] = [];

  beforeAll(async () => {
    const logger = pino({ level: 'silent' });
    app = await buildApp({ store: 'sqlite::memory:', logLevel: 'silent' }, { logger });
    const services = { store: app.store, hub: app.hub, publish: app.publish, maxPageSize: 500 };
    // A stand-in for yoga that records what reaches it.
    const yoga = {
      fetch: async (_url: string, init: { body?: Buffer }) => {
        toYoga.push(init.body?.toString('utf8') ?? '');
        return new Response('{"from":"yoga"}', { status: 299 });
      },
    } as unknown as Parameters<typeof createRequestListener>[0]['yoga'];
    const listener = createRequestListener({
      yoga,
      streams: async (_req, res) => {
        res.writeHead(500).end();
      },
      execute: createHttpExecutor({
        schema: app.schema,
        createContext: () => createContext(services, UNAUTHENTICATED_ADMIN),
        logger,
      }),
      logger,
      maxRequestBytes: 4096,
      ready: async () => {},
      isClosing: () => false,
    });
    server = createServer((req, res) => void listener(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await app.close();
  });

  it('should answer queries and mutations itself, storing the events', async () => {
    toYoga.length = 0;
    const res = await post(url, { query: PUBLISH });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ data: { publishEvent: { type: 'http.check', inbox: 'h' } } });
    expect(await app.store.lastSeq()).toBe(1);
    const sub = await post(url, { query: 'subscription { eventStream { cursor } }' });
    expect(sub.status).toBe(406);
    expect(toYoga).toEqual([]);
  });

  it('should hand the rest to yoga with the body it read', async () => {
    toYoga.length = 0;
    const bodies = [
      '{"query": "{',
      '[{"query":"{ __typename }"}]',
      '{"query":"{ __typename }","foo":1}',
      '{"query":"{ nope }"}',
      '{"query":"query($n: Int!) { events(first: $n) { edges { cursor } } }","variables":{"n":"x"}}',
    ];
    for (const body of bodies) {
      const res = await post(url, body);
      expect(res.status).toBe(299);
    }
    expect(toYoga).toEqual(bodies);
    // Other content types and methods go to yoga without being read here.
    await fetch(`${url}/graphql?query=%7B__typename%7D`);
    expect(toYoga).toHaveLength(bodies.length + 1);
  });

  it('should refuse a body over the limit with 413', async () => {
    const res = await post(url, { query: `{ __typename } # ${'x'.repeat(5000)}` });
    expect(res.status).toBe(413);
  });
});

describe('negotiateJson', () => {
  it.each([
    [undefined, 'application/json'],
    ['', 'application/json'],
    ['*/*', 'application/json'],
    ['application/json', 'application/json'],
    ['Application/JSON', 'application/json'],
    ['application/graphql-response+json', 'application/graphql-response+json'],
    ['text/html, application/graphql-response+json;q=0.1', 'application/graphql-response+json'],
    ['application/json; charset=UTF-8', 'application/json'],
    ['application/json; charset=latin1', null],
    ['text/html', null],
    ['multipart/mixed', null],
  ])('should pick %j as %j', (accept, expected) => {
    expect(negotiateJson(accept)).toBe(expected);
  });
});
