import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSqliteStore } from '../../src/store/sqlite.js';
import type { EventStore } from '../../src/store/types.js';
import { MASKED_MESSAGE } from '../../src/transport/errors.js';
import { negotiateJson } from '../../src/transport/execute-http.js';
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

// What GraphQL over HTTP answers, pinned: a request that is not well-formed gets 400; otherwise,
// with `application/json`, 200 whatever the GraphQL errors; with
// `application/graphql-response+json`, 400 for request errors (parse, validation, operation,
// variables) and 200 once execution started.
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

  it('should answer variables that do not coerce like other request errors, running nothing', async () => {
    const before = await s.app.store.lastSeq();
    const query = 'mutation($t: String!) { publishEvent(input: { type: $t }) { id } }';
    for (const [accept, status, type] of [
      ['application/json', 200, JSON_TYPE],
      ['application/graphql-response+json', 400, GRAPHQL_RESPONSE_TYPE],
    ] as const) {
      const res = await post(s.url, { query, variables: { t: 5 } }, { accept });
      expect([res.status, res.type]).toEqual([status, type]);
      expect(res.json).toEqual({
        errors: [expect.objectContaining({ message: expect.stringMatching(/\$t/) })],
      });
    }
    expect(await s.app.store.lastSeq()).toBe(before);
  });

  it('should answer an operation it cannot determine like other request errors', async () => {
    for (const [body, message] of [
      [{ query: '{ __typename }', operationName: 'X' }, /no operation named "X"/],
      [{ query: 'query A { __typename } query B { __typename }' }, /name the one to run/],
    ] as const) {
      for (const [accept, status] of [
        ['application/json', 200],
        ['application/graphql-response+json', 400],
      ] as const) {
        const res = await post(s.url, body, { accept });
        expect([accept, res.status]).toEqual([accept, status]);
        expect(res.json).toEqual({
          errors: [
            {
              message: expect.stringMatching(message),
              extensions: { code: 'OPERATION_RESOLUTION_FAILURE' },
            },
          ],
        });
      }
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

  it('should answer a request that is not well-formed with 400, whatever it accepts', async () => {
    const cases: [unknown, RegExp][] = [
      [{ variables: {} }, /no "query" parameter/],
      [{ query: 5 }, /"query" parameter must be a string/],
      [{ query: '{ __typename }', variables: 'x' }, /"variables" parameter must be an object/],
      [{ query: '{ __typename }', variables: [1] }, /"variables" parameter .* an array/],
      [{ query: '{ __typename }', extensions: 'x' }, /"extensions" parameter must be an object/],
      [{ query: '{ __typename }', operationName: 5 }, /"operationName" parameter must be a string/],
      [{ query: '{ __typename }', foo: 1 }, /Unexpected parameter "foo"/],
      [[{ query: '{ __typename }' }], /Batching is not supported/],
      ['"x"', /must be a JSON object/],
      ['null', /must be a JSON object/],
      ['', /not valid JSON/],
      ['{"query": "{', /not valid JSON/],
    ];
    for (const [body, message] of cases) {
      for (const [accept, type] of [
        ['application/json', JSON_TYPE],
        ['application/graphql-response+json', GRAPHQL_RESPONSE_TYPE],
      ] as const) {
        const res = await post(s.url, body, { accept });
        expect([JSON.stringify(body), res.status, res.type]).toEqual([
          JSON.stringify(body),
          400,
          type,
        ]);
        expect(res.json).toEqual({
          errors: [
            { message: expect.stringMatching(message), extensions: { code: 'BAD_REQUEST' } },
          ],
        });
      }
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

  it('should answer 406 when Accept names no JSON type, saying what to ask for', async () => {
    const before = await s.app.store.lastSeq();
    for (const accept of ['text/html', 'multipart/mixed', 'application/json; charset=latin1']) {
      const res = await post(s.url, { query: PUBLISH }, { accept });
      expect([accept, res.status, res.type]).toEqual([accept, 406, JSON_TYPE]);
      expect(res.json).toMatchObject({ errors: [{ message: expect.stringMatching(/Accept/) }] });
    }
    expect(await s.app.store.lastSeq()).toBe(before);
  });

  it('should take Content-Type in any case, and every JSON media type', async () => {
    for (const type of [
      'Application/JSON',
      'APPLICATION/JSON; Charset=UTF-8',
      'application/graphql+json',
      'application/graphql-response+json',
    ]) {
      const res = await post(s.url, { query: '{ __typename }' }, { 'content-type': type });
      expect([type, res.status, res.json]).toEqual([type, 200, { data: { __typename: 'Query' } }]);
    }
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

describe('GraphQL over HTTP GET', () => {
  const get = async (params: Record<string, string>, accept = 'application/json') => {
    const res = await fetch(`${s.url}/graphql?${new URLSearchParams(params)}`, {
      headers: { accept },
    });
    const text = await res.text();
    return {
      status: res.status,
      headers: res.headers,
      json: text ? (JSON.parse(text) as Record<string, unknown>) : null,
    };
  };

  it('should run a query with its variables and operation name from the query string', async () => {
    const res = await get({
      query: 'query A { __typename } query B($name: String!) { __type(name: $name) { name } }',
      operationName: 'B',
      variables: JSON.stringify({ name: 'Query' }),
      extensions: '{}',
      cacheBuster: '1',
    });
    expect([res.status, res.json]).toEqual([200, { data: { __type: { name: 'Query' } } }]);
  });

  it('should refuse a mutation with 405 and Allow: POST, running nothing', async () => {
    const before = await s.app.store.lastSeq();
    for (const accept of ['application/json', 'application/graphql-response+json']) {
      const res = await get({ query: PUBLISH }, accept);
      expect([res.status, res.headers.get('allow')]).toEqual([405, 'POST']);
      expect(res.json).toMatchObject({ errors: [{ message: expect.stringMatching(/POST/) }] });
    }
    expect(await s.app.store.lastSeq()).toBe(before);
  });

  it('should refuse a subscription with 406, saying to use Accept: text/event-stream', async () => {
    const res = await get({ query: 'subscription { eventStream { cursor } }' });
    expect([res.status, res.headers.get('accept')]).toEqual([406, 'text/event-stream']);
    expect(s.app.hub.size).toBe(0);
  });

  it('should answer parameters that are not JSON with 400', async () => {
    for (const name of ['variables', 'extensions']) {
      const res = await get({ query: '{ __typename }', [name]: '{' });
      expect(res.status).toBe(400);
      expect(res.json).toMatchObject({
        errors: [{ message: expect.stringContaining(`"${name}" parameter is not valid JSON`) }],
      });
    }
    expect((await get({})).status).toBe(400);
  });

  it('should answer other methods with 405 and Allow: GET, POST', async () => {
    for (const method of ['PUT', 'DELETE', 'PATCH', 'HEAD']) {
      const res = await fetch(`${s.url}/graphql?query=%7B__typename%7D`, {
        method,
        headers: { 'content-type': 'application/json' },
      });
      expect([method, res.status, res.headers.get('allow')]).toEqual([method, 405, 'GET, POST']);
    }
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
