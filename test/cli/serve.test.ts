import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'graphql-sse';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { tsubscribe } from '../tserver.js';
import { tcli } from './tcli.js';

const dir = mkdtempSync(join(tmpdir(), 'tidings-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function capture() {
  let out = '';
  let err = '';
  return {
    io: { out: (t: string) => (out += t), err: (t: string) => (err += t) },
    out: () => out,
    err: () => err,
  };
}

async function gql(url: string, query: string) {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query }),
  });
  return (await res.json()) as { data?: Record<string, never>; errors?: unknown[] };
}

describe('tidings (in process)', () => {
  it('should print usage and exit 2 without a command, 0 with --help', async () => {
    const a = capture();
    expect(await main([], a.io, {})).toBe(2);
    expect(a.out()).toMatch(/Usage: tidings <command>/);
    const b = capture();
    expect(await main(['--help'], b.io, {})).toBe(0);
  });

  it('should reject an unknown command with exit 2', async () => {
    const c = capture();
    expect(await main(['frobnicate'], c.io, {})).toBe(2);
    expect(c.err()).toMatch(/unknown command "frobnicate"/);
  });

  it('should list every setting in serve --help', async () => {
    const c = capture();
    expect(await main(['serve', '--help'], c.io, {})).toBe(0);
    for (const name of [
      '--port',
      'TIDINGS_STORE',
      'TIDINGS_KEEPALIVE_MS',
      'TIDINGS_RETENTION',
      'LOG_LEVEL',
    ]) {
      expect(c.out()).toContain(name);
    }
  });

  it.each([
    [['serve', '--port', 'eighty'], {}, /--port="eighty" is invalid/],
    [['serve'], { TIDINGS_KEEPALIVE_MS: '-5' }, /TIDINGS_KEEPALIVE_MS="-5" is invalid/],
    [['serve'], { TIDINGS_STORE: 'mysql://x' }, /TIDINGS_STORE="mysql:\/\/x" is invalid/],
    [['serve', '--colour', 'blue'], {}, /Unknown option '--colour'/],
    [['serve'], { HOST: '0.0.0.0' }, /no auth is configured/],
    [['serve', '--max-filter-items', '501'], {}, /--max-filter-items="501" is invalid/],
    [['serve'], { TIDINGS_ALLOWED_HOSTS: 'https://x' }, /TIDINGS_ALLOWED_HOSTS="https:\/\/x"/],
    [['serve', '--store-timeout', '50ms'], {}, /--store-timeout="50ms" is invalid/],
  ])('should refuse %j %j with one line and exit 2', async (args, env, message) => {
    const c = capture();
    expect(await main(args, c.io, env)).toBe(2);
    expect(c.err()).toMatch(message);
    expect(c.err().trim().split('\n')).toHaveLength(1);
  });
});

describe('tidings serve (real process)', () => {
  it('should exit non-zero with one line naming a bad setting', async () => {
    const p = tcli(['serve'], { TIDINGS_RETENTION: 'forever' });
    expect(await p.exited).toBe(2);
    expect(p.stderr().trim()).toBe(
      'tidings serve: TIDINGS_RETENTION="forever" is invalid: expected a duration such as 30d, 12h, 15m or 90s',
    );
  });

  it('should end streams with a resume hint on SIGTERM, exit 0, and keep the data for the next start', async () => {
    const store = `sqlite:${join(dir, 'nested', 'tidings.db')}`;
    const first = tcli(['serve', '--port', '0', '--store', store]);
    const url = await first.listening();
    const health = await fetch(`${url}/healthz`);
    expect(await health.json()).toEqual({ status: 'ok' });
    const published = await gql(
      url,
      'mutation { publishEvent(input: { id: "kept", type: "restart.check" }) { cursor } }',
    );
    expect(published.errors).toBeUndefined();

    const client = createClient({ url: `${url}/graphql/stream`, retryAttempts: 0 });
    const sub = tsubscribe(client, 'subscription { eventStream { id } }');
    // Wait until the stream is open (a keepalive-free check: publish and see it arrive).
    await gql(url, 'mutation { publishEvent(input: { type: "restart.live" }) { id } }');
    await sub.next(1);

    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    const last = await sub.next(2);
    expect(JSON.stringify(last.at(-1) ?? sub.failure)).toMatch(/SHUTTING_DOWN/);
    client.dispose();

    const second = tcli(['serve', '--port', '0', '--store', store]);
    const url2 = await second.listening();
    const again = await gql(url2, '{ event(id: "kept") { type cursor } }');
    expect(again.data).toEqual({
      event: {
        type: 'restart.check',
        cursor: (published.data as never as { publishEvent: { cursor: string } }).publishEvent
          .cursor,
      },
    });
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });
});
