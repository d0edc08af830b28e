/**
 * The `/console` route over plain HTTP: a static page with its caching and security headers,
 * open without a token when auth is on, and nothing in it that reaches another host or writes
 * event data as HTML.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JWT_CONFIG } from '../auth/tokens.js';
import { tserver, type TServer } from '../tserver.js';

let s: TServer;
beforeAll(async () => {
  s = await tserver(JWT_CONFIG);
});
afterAll(() => s.stop());

describe('/console', () => {
  it('should serve the page without a token, revalidated by ETag, under a policy that allows only its own inline code', async () => {
    const res = await fetch(`${s.url}/console`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const etag = res.headers.get('etag');
    expect(etag).toMatch(/^"[\w-]+"$/);
    const html = await res.text();
    expect(html).toContain('<title>Tidings console</title>');

    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'self'");
    const script = /<script>([\s\S]*?)<\/script>/.exec(html)?.[1] ?? '';
    const hash = createHash('sha256').update(script).digest('base64');
    expect(csp).toContain(`script-src 'sha256-${hash}'`);

    const again = await fetch(`${s.url}/console`, { headers: { 'if-none-match': etag ?? '' } });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
  });

  it('should answer HEAD without a body and refuse other methods with 405', async () => {
    const head = await fetch(`${s.url}/console`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBeGreaterThan(1000);
    const post = await fetch(`${s.url}/console`, { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('should load nothing from another host and never write HTML from data', async () => {
    const html = await (await fetch(`${s.url}/console`)).text();
    expect(html).not.toMatch(/\b(src|href)=["']?(https?:)?\/\//i);
    expect(html).not.toMatch(/url\(|@import/);
    expect(html).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
    expect(html).toContain('new EventSource(');
  });

  it('should still require a token for the stream the page opens', async () => {
    const res = await fetch(
      `${s.url}/graphql/stream?${new URLSearchParams({ query: 'subscription { eventStream { id } }' })}`,
      { headers: { accept: 'text/event-stream' } },
    );
    expect(res.status).toBe(401);
    await res.body?.cancel();
  });
});
