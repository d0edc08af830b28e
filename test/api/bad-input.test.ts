import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tserver, type TServer } from '../tserver.js';

let s: TServer;
beforeAll(async () => {
  s = await tserver({ maxRequestBytes: 4096, maxEventBodyBytes: 1024 });
});
afterAll(() => s.stop());

async function post(body: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${s.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
    body,
  });
  const text = await res.text();
  return {
    status: res.status,
    text,
    json: (() => {
      try {
        return JSON.parse(text) as {
          errors?: { message: string; extensions?: { code?: string } }[];
        };
      } catch {
        return null;
      }
    })(),
  };
}

const publish = (input: string) =>
  post(JSON.stringify({ query: `mutation { publishEvent(input: ${input}) { id } }` }));

// With `Accept: application/json`, GraphQL over HTTP answers request errors with 200 and an
// `errors` list; a body that is not a well-formed request (JSON that cannot be parsed, no query)
// and oversized bodies are HTTP errors.
describe('bad input', () => {
  const cases: [string, () => ReturnType<typeof post>, RegExp, number | null][] = [
    ['an unknown severity', () => publish('{ type: "x", severity: LOUD }'), /Severity/, 200],
    ['an empty type', () => publish('{ type: "" }'), /type must not be empty/, 200],
    [
      'a type of 129 characters',
      () => publish(`{ type: "${'t'.repeat(129)}" }`),
      /at most 128/,
      200,
    ],
    ['a type with spaces', () => publish('{ type: "two words" }'), /type may contain/, 200],
    ['an unknown input field', () => publish('{ type: "x", colour: "red" }'), /colour/, 200],
    ['a bad timestamp', () => publish('{ type: "x", timestamp: "yesterday" }'), /DateTime/, 200],
    [
      'a control character in the message',
      () => publish('{ type: "x", message: "a\\u0001b" }'),
      /control characters/,
      200,
    ],
    [
      'an event body over the limit',
      () => publish(`{ type: "x", body: { blob: "${'b'.repeat(1100)}" } }`),
      /over the limit of 1024/,
      200,
    ],
    [
      'a request body over the limit',
      () => publish(`{ type: "x", message: "${'m'.repeat(5000)}" }`),
      /larger than 4096 bytes/,
      413,
    ],
    ['malformed JSON', () => post('{"query": "mutation {'), /JSON|parse|Unexpected/i, 400],
    [
      'a query that is not GraphQL',
      () => post(JSON.stringify({ query: 'publish please' })),
      /Syntax Error/,
      200,
    ],
    ['a missing query', () => post(JSON.stringify({ variables: {} })), /query/i, 400],
  ];

  it.each(cases)(
    'should answer %s with a clear error, store nothing and stay healthy',
    async (_name, send, message, status) => {
      const before = await s.app.store.lastSeq();
      const res = await send();
      if (status !== null) expect(res.status).toBe(status);
      expect(res.status).toBeLessThan(500);
      expect(res.json?.errors?.[0]?.message).toMatch(message);
      expect(await s.app.store.lastSeq()).toBe(before);
      const health = await fetch(`${s.url}/healthz`);
      expect(health.status).toBe(200);
    },
  );

  it('should refuse a batch over the batch limit', async () => {
    const small = await tserver({ maxBatch: 2 });
    try {
      const res = await small.gql(
        'mutation { publishEvents(inputs: [{type: "a"}, {type: "b"}, {type: "c"}]) { id } }',
      );
      expect(res.errors?.[0]?.message).toMatch(/at most 2 events/);
      expect(await small.app.store.lastSeq()).toBe(0);
    } finally {
      await small.stop();
    }
  });

  it('should still publish after all of the above', async () => {
    const res = await s.gql<{ publishEvent: { id: string } }>(
      'mutation { publishEvent(input: { type: "still.ok" }) { id } }',
    );
    expect(res.data?.publishEvent.id).toBeTruthy();
  });
});
