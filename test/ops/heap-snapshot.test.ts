/**
 * `POST /debug/heap-snapshot`: writes a V8 heap snapshot into `TIDINGS_HEAP_DIR` and answers its
 * path; admins only with auth, callers on this machine only without; one at a time, at most one
 * per TIDINGS_HEAP_SNAPSHOT_INTERVAL, keeping TIDINGS_HEAP_SNAPSHOTS_KEPT files.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, hs256, JWT_CONFIG } from '../auth/tokens.js';
import { tserver, type TServer } from '../tserver.js';

let dir: string;
const previous = process.env.TIDINGS_HEAP_DIR;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tidings-heap-'));
  // A directory that does not exist yet: the endpoint creates it.
  process.env.TIDINGS_HEAP_DIR = join(dir, 'snapshots');
});
afterAll(() => {
  if (previous === undefined) delete process.env.TIDINGS_HEAP_DIR;
  else process.env.TIDINGS_HEAP_DIR = previous;
  rmSync(dir, { recursive: true, force: true });
});

const snapshot = (url: string, headers: Record<string, string> = {}) =>
  fetch(`${url}/debug/heap-snapshot`, { method: 'POST', headers });

/** Checks a 200 answer names a non-empty snapshot in the configured directory, then deletes it. */
async function expectSnapshot(res: Response): Promise<void> {
  expect(res.status).toBe(200);
  const { path } = (await res.json()) as { path: string };
  expect(dirname(path)).toBe(join(dir, 'snapshots'));
  expect(path).toMatch(/\.heapsnapshot$/);
  expect(statSync(path).size).toBeGreaterThan(0);
  rmSync(path);
}

describe('heap snapshot without auth', () => {
  let s: TServer;
  beforeAll(async () => {
    s = await tserver();
  });
  afterAll(() => s.stop());

  it('should write a snapshot for a caller on this machine and answer its path', async () => {
    await expectSnapshot(await snapshot(s.url));
  });

  it('should refuse callers through a proxy, and methods other than POST', async () => {
    const proxied = await snapshot(s.url, { 'x-forwarded-for': '198.51.100.4' });
    expect(proxied.status).toBe(403);
    expect(await proxied.json()).toMatchObject({ errors: [{ extensions: { code: 'FORBIDDEN' } }] });
    const get = await fetch(`${s.url}/debug/heap-snapshot`);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
  });
});

describe('heap snapshot with TIDINGS_AUTH=jwt', () => {
  let s: TServer;
  beforeAll(async () => {
    s = await tserver(JWT_CONFIG);
  });
  afterAll(() => s.stop());

  it('should want an admin token, even from this machine', async () => {
    expect((await snapshot(s.url)).status).toBe(401);
    const reader = bearer(await hs256({ sub: 'reader', scope: 'events:read events:publish' }));
    expect((await snapshot(s.url, reader)).status).toBe(403);
    const admin = bearer(await hs256({ sub: 'root', scope: 'events:admin' }));
    await expectSnapshot(await snapshot(s.url, { ...admin, 'x-forwarded-for': '198.51.100.4' }));
  });
});

describe('heap snapshot limits', () => {
  let s: TServer;
  beforeAll(async () => {
    s = await tserver({ heapSnapshotsKept: 2 });
  });
  afterAll(() => s.stop());

  it('should write one snapshot at a time, one per interval, and keep the newest files only', async () => {
    const snapshots = join(dir, 'snapshots');
    mkdirSync(snapshots, { recursive: true });
    const old = [1, 2, 3].map(
      (day) => `tidings-2000-01-0${day}T00-00-00-000Z-1-${day}.heapsnapshot`,
    );
    for (const name of [...old, 'notes.txt']) writeFileSync(join(snapshots, name), 'old');
    const answers = await Promise.all([snapshot(s.url), snapshot(s.url)]);
    expect(answers.map((a) => a.status).sort()).toEqual([200, 429]);
    const limited = answers.find((a) => a.status === 429) as Response;
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await limited.json()).toMatchObject({
      errors: [{ extensions: { code: 'RATE_LIMITED' } }],
    });
    expect((await snapshot(s.url)).status).toBe(429);
    const written = answers.find((a) => a.status === 200) as Response;
    const { path } = (await written.clone().json()) as { path: string };
    // The two oldest are gone: the newest old one and the new one remain.
    expect(readdirSync(snapshots).sort()).toEqual([old[2], basename(path), 'notes.txt'].sort());
    await expectSnapshot(written);
  });
});
