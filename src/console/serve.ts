/**
 * The live console at `/console`: one static page (`index.html`, next to this module; the build
 * copies it into `dist/console/`), read once and served from memory with an ETag and a content
 * security policy that allows its own inline script and style and nothing else.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';

/** The console page, ready to send. */
export interface ConsolePage {
  body: Buffer;
  /** A strong ETag of `body`. */
  etag: string;
  /** The `Content-Security-Policy` header: the hashes of the page's inline script and style. */
  csp: string;
}

let cached: ConsolePage | undefined;

/** The `'sha256-…'` sources of every inline `<tag>` block of `html`. */
function inlineHashes(html: string, tag: 'script' | 'style'): string[] {
  const blocks = html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'));
  return [...blocks].map(
    (m) =>
      `'sha256-${createHash('sha256')
        .update(m[1] as string)
        .digest('base64')}'`,
  );
}

/**
 * Reads the console page (once) and derives its ETag and content security policy. Throws when
 * the file is missing, saying how to build it.
 */
export function loadConsolePage(): ConsolePage {
  if (cached) return cached;
  const file = new URL('./index.html', import.meta.url);
  let html: string;
  try {
    html = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(
      `The console page ${fileURLToPath(file)} cannot be read: rebuild with \`npm run build\`, ` +
        'which copies src/console/index.html into dist/console/',
      { cause: err },
    );
  }
  const body = Buffer.from(html, 'utf8');
  const csp = [
    "default-src 'none'",
    `script-src ${inlineHashes(html, 'script').join(' ')}`,
    `style-src ${inlineHashes(html, 'style').join(' ')}`,
    "connect-src 'self'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
  cached = { body, etag, csp };
  return cached;
}

/**
 * Answers a request for `/console`: `GET`/`HEAD` get the page (`304` when `If-None-Match`
 * matches), anything else `405`. The page needs no caller: its stream request does.
 */
export function serveConsole(req: IncomingMessage, res: ServerResponse): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
    res.end('The console page only answers GET and HEAD\n');
    return;
  }
  const page = loadConsolePage();
  const headers = {
    etag: page.etag,
    // Revalidated on every load (a 304 when unchanged), so an upgrade shows at once.
    'cache-control': 'no-cache',
    'content-security-policy': page.csp,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  };
  const tags = req.headers['if-none-match'];
  if (tags && tags.split(',').some((t) => t.trim().replace(/^W\//, '') === page.etag)) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  res.writeHead(200, {
    ...headers,
    'content-type': 'text/html; charset=utf-8',
    'content-length': page.body.length,
  });
  res.end(req.method === 'HEAD' ? undefined : page.body);
}
