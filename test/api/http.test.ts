import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tserver, type TServer } from '../tserver.js';

let s: TServer;
beforeAll(async () => {
  s = await tserver();
});
afterAll(() => s.stop());

describe('HTTP surface', () => {
  it('should answer /healthz and /readyz', async () => {
    const health = await fetch(`${s.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${s.url}/readyz`);
    expect(ready.status).toBe(200);
  });

  it('should serve GraphiQL with its assets inline, loading nothing from another host', async () => {
    const res = await fetch(`${s.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('<title>Tidings</title>');
    expect(html).not.toMatch(/<script[^>]+src=["']https?:/);
    expect(html).not.toMatch(/<link[^>]+href=["']https?:[^>]+stylesheet/);
    expect(html).toContain('GRAPHQL_SSE');
    expect(html).toContain('eventStream');
  });

  it('should answer a GET query', async () => {
    const res = await fetch(
      `${s.url}/graphql?query=${encodeURIComponent('{ events(first: 1) { edges { cursor } } }')}`,
      {
        headers: { accept: 'application/json' },
      },
    );
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ data: { events: { edges: [] } } });
  });

  it('should refuse new requests with 503 while shutting down, but still answer /healthz', async () => {
    const other = await tserver();
    const closing = other.app.close();
    const res = await fetch(`${other.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expect(res.status).toBe(503);
    expect((await fetch(`${other.url}/healthz`)).status).toBe(200);
    await closing;
    expect((await fetch(`${other.url}/readyz`)).status).toBe(503);
    await other.stop();
  });
});
