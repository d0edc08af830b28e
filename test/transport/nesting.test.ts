/** The nesting guard that runs before graphql-js parses a document recursively. */
import { describe, expect, it } from 'vitest';
import { checkNesting, MAX_NESTING } from '../../src/schema/limits.js';
import { tserver } from '../tserver.js';

describe('checkNesting', () => {
  it('should count brackets outside strings, block strings and comments only', () => {
    const deep = (n: number) => `${'{a'.repeat(n)}${'}'.repeat(n)}`;
    expect(() => checkNesting(deep(MAX_NESTING))).not.toThrow();
    expect(() => checkNesting(deep(MAX_NESTING + 1))).toThrow(/nest more than 256 levels/);
    const noise = '{'.repeat(MAX_NESTING * 2);
    expect(() => checkNesting(`{ a(s: "${noise}") }`)).not.toThrow();
    expect(() => checkNesting(`{ a(s: """${noise} \\""" ${noise}""") }`)).not.toThrow();
    expect(() => checkNesting(`# ${noise}\n{ a }`)).not.toThrow();
    expect(() => checkNesting(`{ a(s: "\\"${noise}") }`)).not.toThrow();
  });

  it('should answer documents and variables nested thousands deep with a 4xx or an error, never a crash', async () => {
    const s = await tserver();
    try {
      const query = `${'{a'.repeat(6000)}${'}'.repeat(6000)}`;
      const res = await s.gql(query);
      expect(res.errors?.[0]?.message).toMatch(/Query too deep/);
      const get = await fetch(`${s.url}/graphql?query=${encodeURIComponent(query)}`);
      expect(get.status).toBeLessThan(500);
      await get.body?.cancel();
      const variables = `{"v":${'['.repeat(9000)}${']'.repeat(9000)}}`;
      const stream = await fetch(`${s.url}/graphql/stream`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: `{"query":"{ __typename }","variables":${variables}}`,
      });
      expect(stream.status).toBeLessThan(500);
      await stream.body?.cancel();
      expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
    } finally {
      await s.stop();
    }
  });
});
