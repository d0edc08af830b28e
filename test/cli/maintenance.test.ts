/** `tidings purge`, `tidings export` and `tidings serve --print-config`. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { validateEventInput } from '../../src/events/validate.js';
import { createSqliteStore } from '../../src/store/sqlite.js';

let dir: string;
let store: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tidings-maintenance-'));
  store = `sqlite:${join(dir, 'events.db')}`;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function cli(args: string[], env: Record<string, string> = {}) {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => (out += t), err: (t) => (err += t) }, env);
  return { code, out, err };
}

async function seed(n: number) {
  const s = createSqliteStore({ path: join(dir, 'events.db') });
  const events = Array.from({ length: n }, (_, i) =>
    validateEventInput({ type: `old.${i}`, body: { i } }),
  );
  const stored = (await s.append(events)).map((o) => o.event);
  await s.close();
  return stored;
}

describe('export and purge', () => {
  it('should export the events received before a date as NDJSON, then purge exactly those', async () => {
    const stored = await seed(1_500);
    const before = new Date(Date.now() + 1_000).toISOString();
    const file = join(dir, 'cold.ndjson');
    const exported = await cli(['export', '--store', store, '--before', before, '--out', file]);
    expect(exported).toMatchObject({ code: 0, err: 'exported 1500 events\n' });
    const lines = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map(
        (l) => JSON.parse(l) as { id: string; cursor: string; timestamp: string; body: unknown },
      );
    expect(lines.map((l) => l.id)).toEqual(stored.map((e) => e.id));
    expect(lines[0]).toMatchObject({ cursor: stored[0]?.cursor, body: { i: 0 } });
    expect(lines[0]?.timestamp).toMatch(/Z$/);

    // Nothing is older than the default retention (30 days): nothing goes.
    const none = await cli(['purge', '--store', store]);
    expect(none.code).toBe(0);
    expect(none.out).toMatch(/^purged 0 events/);
    const purged = await cli(['purge', '--store', store, '--before', before, '--batch', '400']);
    expect(purged.code).toBe(0);
    expect(purged.out).toContain(`purged 1500 events received before ${before}`);
    expect(purged.out).toContain(`retention horizon ${stored.at(-1)?.cursor}`);
    const s = createSqliteStore({ path: join(dir, 'events.db') });
    expect((await s.readAfter(0, [], 10)).events).toEqual([]);
    await s.close();
    const empty = await cli(['export', '--store', store, '--before', before]);
    expect(empty).toMatchObject({ code: 0, out: '', err: 'exported 0 events\n' });
  });

  it.each([
    [['export', '--before', 'yesterday-ish'], /--before "yesterday-ish" is not a date/],
    [['export'], /--before DATE is required/],
    [
      ['export', '--before', '2020-02-30'],
      /--before "2020-02-30" is not a date \(day 30 does not exist: February 2020 has 29 days\)/,
    ],
    [['purge', '--before', '2026-01-01T24:00:00Z'], /\(hour 24 does not exist/],
    [['purge', '--batch', '0'], /--batch "0" must be a positive integer/],
    [['purge', '--nope'], /Unknown option '--nope'/],
    [['purge', '--retention', 'forever'], /--retention="forever" is invalid/],
  ])('should refuse %j with exit code 2', async (args, message) => {
    const result = await cli([...args, '--store', store]);
    expect(result.code).toBe(2);
    expect(result.err).toMatch(message);
    expect(result.out).toBe('');
  });
});

describe('serve --print-config', () => {
  it('should print the effective configuration with secrets redacted, and not start', async () => {
    const result = await cli(['serve', '--print-config', '--port', '5123'], {
      TIDINGS_AUTH: 'jwt',
      TIDINGS_JWT_SECRET: 'a-secret-that-is-long-enough-for-hs256!!',
      TIDINGS_STORE: 'postgres://app:hunter2@db:5432/events',
    });
    expect(result.code).toBe(0);
    const config = JSON.parse(result.out) as Record<string, unknown>;
    expect(config).toMatchObject({
      PORT: 5123,
      TIDINGS_AUTH: 'jwt',
      TIDINGS_JWT_SECRET: '<redacted>',
      TIDINGS_STORE: 'postgres://app:***@db:5432/events',
      TIDINGS_RETENTION: 30 * 86_400_000,
    });
    expect(result.out).not.toContain('hunter2');
    expect(result.out).not.toContain('long-enough');
  });
});
