/**
 * `tidings tail` against a real server: live events in both formats, filters, resuming, --limit,
 * refusals, reconnects noted on stderr, usage errors, and SIGINT in a real process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTidingsClient, type TidingsEvent } from '../../src/client/index.js';
import { main } from '../../src/cli/main.js';
import { oneLine } from '../../src/cli/remote.js';
import { tail, type TailOptions } from '../../src/cli/tail.js';
import { hs256, JWT_CONFIG } from '../auth/tokens.js';
import { waitFor } from '../transport/helpers.js';
import { tserver, type TServer } from '../tserver.js';
import { tcli } from './tcli.js';

let s: TServer;
beforeAll(async () => {
  s = await tserver();
});
afterAll(() => s.stop());

function capture() {
  let out = '';
  let err = '';
  return {
    io: { out: (t: string) => (out += t), err: (t: string) => (err += t) },
    out: () => out,
    err: () => err,
    lines: () => out.split('\n').filter((l) => l !== ''),
  };
}

/** Runs `tidings tail` in process; `stop()` aborts it as a signal would. */
function run(args: string[], options: TailOptions = {}, env: Record<string, string> = {}) {
  const c = capture();
  const controller = new AbortController();
  const code = tail(['--url', s.url, ...args], c.io, env, {
    signal: controller.signal,
    ...options,
  });
  return {
    ...c,
    code,
    /** Resolves once the stream is live (the note on stderr). */
    live: (times = 1) =>
      waitFor(() => c.err().split('tidings tail: live\n').length > times, 'tail to be live'),
    /** Resolves once `n` lines were printed. */
    printed: (n: number) => waitFor(() => c.lines().length >= n, `${n} lines`),
    stop: async () => {
      controller.abort();
      return code;
    },
  };
}

const client = () => createTidingsClient({ url: s.url });

describe('tidings tail', () => {
  it('should print live events as readable lines, notes on stderr only, and exit 0 when stopped', async () => {
    const plain = run(['--inbox', 'tail-read']);
    const coloured = run(['--inbox', 'tail-read'], { colour: true });
    await plain.live();
    await coloured.live();
    const published = [
      await client().publish({
        type: 'vm.started',
        inbox: 'tail-read',
        severity: 'WARNING',
        message: 'VM 42\nstarted',
      }),
      await client().publish({ type: 'vm.stopped', inbox: 'tail-read' }),
    ];
    await plain.printed(2);
    await coloured.printed(2);
    expect(await plain.stop()).toBe(0);
    expect(await coloured.stop()).toBe(0);

    const [first, second] = published as [TidingsEvent, TidingsEvent];
    expect(plain.lines()).toEqual([
      `${first.timestamp}  WARNING   tail-read  vm.started  VM 42 started  cursor=${first.cursor}`,
      `${second.timestamp}  INFO      tail-read  vm.stopped  cursor=${second.cursor}`,
    ]);
    expect(plain.out()).not.toContain('\x1b[');
    expect(coloured.lines()[0]).toContain('\x1b[33mWARNING \x1b[0m');
    expect(coloured.lines()[1]).toContain('\x1b[36mINFO    \x1b[0m');
    expect(plain.err()).toBe(
      `tidings tail: live\ntidings tail: stopped; continue with --after ${second.cursor}\n`,
    );
  });

  it('should print NDJSON with --json: exactly the client event objects', async () => {
    const t = run(['--inbox', 'tail-json', '--json']);
    await t.live();
    const published = await client().publishMany([
      {
        type: 'j.one',
        inbox: 'tail-json',
        body: { vm: 42, tags: ['a'] },
        resource: { type: 'vm', id: '42' },
      },
      { type: 'j.two', inbox: 'tail-json', clientId: null, actor: 'alice' },
    ]);
    await t.printed(2);
    expect(await t.stop()).toBe(0);
    expect(t.lines().map((l) => JSON.parse(l) as unknown)).toEqual(published);
  });

  it('should apply every filter flag, and exit 0 by itself after --limit events', async () => {
    const t = run([
      '--inbox',
      'tail-f-*',
      '--type',
      'vm.*,host.down',
      '--severity',
      'warning+',
      '--category',
      'ops',
      '--actor',
      'bob',
      '--limit',
      '2',
      '--json',
    ]);
    await t.live();
    const base = { category: 'ops', actor: 'bob', severity: 'ERROR' as const };
    const published = await client().publishMany([
      { ...base, type: 'vm.a', inbox: 'other' }, // inbox
      { ...base, type: 'db.a', inbox: 'tail-f-1' }, // type
      { ...base, type: 'vm.b', inbox: 'tail-f-1', severity: 'INFO' }, // severity
      { ...base, type: 'vm.c', inbox: 'tail-f-1', category: 'dev' }, // category
      { ...base, type: 'vm.d', inbox: 'tail-f-1', actor: 'eve' }, // actor
      { ...base, type: 'vm.e', inbox: 'tail-f-2' }, // matches
      { ...base, type: 'host.down', inbox: 'tail-f-1', severity: 'CRITICAL' }, // matches
      { ...base, type: 'vm.f', inbox: 'tail-f-1' }, // matches, after the limit
    ]);
    expect(await t.code).toBe(0);
    const types = t.lines().map((l) => (JSON.parse(l) as TidingsEvent).type);
    expect(types).toEqual(['vm.e', 'host.down']);
    expect(published).toHaveLength(8);
  });

  it('should replay from --after, then go on live', async () => {
    const [a, b, c] = await client().publishMany([
      { type: 'r.1', inbox: 'tail-resume' },
      { type: 'r.2', inbox: 'tail-resume' },
      { type: 'r.3', inbox: 'tail-resume' },
    ]);
    const t = run(['--inbox', 'tail-resume', '--after', a!.cursor, '--limit', '3', '--json']);
    await t.printed(2);
    const d = await client().publish({ type: 'r.4', inbox: 'tail-resume' });
    expect(await t.code).toBe(0);
    expect(t.lines().map((l) => (JSON.parse(l) as TidingsEvent).id)).toEqual([b!.id, c!.id, d.id]);
  });

  it('should note a reconnect on stderr and resume after the last event, without a repeat', async () => {
    const t = run(['--client-id', 'tail-rc', '--inbox', 'tail-rc', '--json']);
    await t.live();
    const first = await client().publish({ type: 'rc.1', inbox: 'tail-rc' });
    await t.printed(1);
    const ended = await s.gql('mutation { endStreams(clientId: "tail-rc") }');
    expect(ended.data).toEqual({ endStreams: 1 });
    await waitFor(() => t.err().includes('reconnecting'), 'the reconnect note');
    await t.live(2);
    const second = await client().publish({ type: 'rc.2', inbox: 'tail-rc', clientId: 'tail-rc' });
    await t.printed(2);
    expect(await t.stop()).toBe(0);
    expect(t.lines().map((l) => (JSON.parse(l) as TidingsEvent).id)).toEqual([first.id, second.id]);
    expect(t.err()).toContain(
      `tidings tail: live\ntidings tail: reconnecting… (resuming after ${first.cursor})\ntidings tail: live\n`,
    );
  });

  it('should keep a readable line on one line, with control characters shown, not obeyed', () => {
    expect(oneLine('a\r\n\tb')).toBe('a b');
    expect(oneLine('red \x1b[31mtext\x07\x9b')).toBe('red \\u001b[31mtext\\u0007\\u009b');
    expect(oneLine(null)).toBe('');
  });

  it('should print its usage with --help, and be listed by tidings --help', async () => {
    const c = capture();
    expect(await main(['tail', '--help'], c.io, {})).toBe(0);
    for (const flag of ['--after', '--limit', '--json', '--client-id', '--inbox', '--since']) {
      expect(c.out()).toContain(flag);
    }
    const top = capture();
    expect(await main(['--help'], top.io, {})).toBe(0);
    for (const command of ['serve', 'token', 'tail', 'publish', 'events']) {
      expect(top.out()).toMatch(new RegExp(`^ {2}${command} `, 'm'));
    }
  });

  it.each<[string, string[], RegExp]>([
    ['an unknown flag', ['--colour'], /^Unknown option '--colour' \(see "tidings tail --help"\)$/],
    ['a positional argument', ['pdfm'], /Unexpected argument 'pdfm'/],
    [
      'a bad severity',
      ['--severity', 'info,fatal'],
      /unknown severity "fatal" in --severity: expected one of debug, info/,
    ],
    [
      'a bad since',
      ['--since', 'yesterday'],
      /--since="yesterday" is invalid: expected an ISO 8601/,
    ],
    [
      'a date-time without zone',
      ['--until', '2026-01-31T12:00'],
      /--until="2026-01-31T12:00" is invalid/,
    ],
    [
      'since after until',
      ['--since', '2026-02-01', '--until', '2026-01-01'],
      /is not before --until/,
    ],
    ['a bad limit', ['--limit', '0'], /--limit="0" is invalid: expected a whole number/],
    ['a bad inbox', ['--inbox', 'a b'], /bad inbox "a b" in --inbox/],
    ['an empty type list', ['--type', ' , '], /--type is empty/],
    [
      'a bad url',
      ['--url', 'ftp://x'],
      /--url="ftp:\/\/x" is invalid: expected the server's base URL/,
    ],
  ])('should refuse %s with one line on stderr and exit 2', async (_name, args, message) => {
    const c = capture();
    expect(await main(['tail', '--url', s.url, ...args], c.io, {})).toBe(2);
    expect(c.out()).toBe('');
    expect(c.err()).toMatch(/^tidings tail: /);
    expect(
      c
        .err()
        .replace(/^tidings tail: /, '')
        .trimEnd(),
    ).toMatch(message);
    expect(c.err().trim().split('\n')).toHaveLength(1);
  });

  it('should take the server from TIDINGS_URL', async () => {
    const c = capture();
    const controller = new AbortController();
    const code = tail(
      ['--limit', '1', '--inbox', 'tail-env'],
      c.io,
      { TIDINGS_URL: s.url },
      {
        signal: controller.signal,
      },
    );
    await waitFor(() => c.err().includes('live'), 'tail to be live');
    await client().publish({ type: 'env.x', inbox: 'tail-env' });
    expect(await code).toBe(0);
    expect(c.out()).toContain('env.x');
  });
});

describe('tidings tail with TIDINGS_AUTH=jwt', () => {
  let secure: TServer;
  beforeAll(async () => {
    secure = await tserver(JWT_CONFIG);
  });
  afterAll(() => secure.stop());

  it('should exit 1 with the server message on FORBIDDEN, and print nothing on stdout', async () => {
    const token = await hs256({ sub: 'writer', scope: 'events:publish' });
    const c = capture();
    const code = await tail(['--url', secure.url], c.io, { TIDINGS_TOKEN: token });
    expect(code).toBe(1);
    expect(c.out()).toBe('');
    // The server answers 200 and refuses in the stream's first frame: the stream was live first.
    expect(c.err().split('\n').at(-2)).toMatch(
      /^tidings tail: subject "writer" may not read events: .*lacks the scope "events:read" \(FORBIDDEN\)$/,
    );
    expect(c.err()).not.toContain(token);
  });

  it('should exit 1 on an inbox outside the token, and read its own with --token', async () => {
    const token = await hs256({ sub: 'reader', scope: 'events:read', inboxes: ['mine'] });
    const refused = capture();
    expect(
      await tail(['--url', secure.url, '--inbox', 'theirs', '--token', token], refused.io, {}),
    ).toBe(1);
    expect(refused.err()).toMatch(/inbox "theirs".*\(FORBIDDEN\)$/m);

    const ok = capture();
    const code = tail(
      ['--url', secure.url, '--inbox', 'mine', '--limit', '1', '--token', token],
      ok.io,
      {},
    );
    await waitFor(() => ok.err().includes('live'), 'tail to be live');
    const admin = await hs256({ sub: 'admin', scope: 'events:admin' });
    await createTidingsClient({ url: secure.url, token: admin }).publish({
      type: 'm.x',
      inbox: 'mine',
    });
    expect(await code).toBe(0);
    expect(ok.out()).toContain('m.x');
  });

  it('should exit 1 with an expired token instead of reconnecting again and again', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await hs256(
      { sub: 'late', scope: 'events:read' },
      { issuedAt: now - 7200, expiresIn: now - 3600 },
    );
    const c = capture();
    expect(await tail(['--url', secure.url], c.io, { TIDINGS_TOKEN: token })).toBe(1);
    expect(c.err()).toMatch(
      /^tidings tail: the token expired at .*: get a new one .*\(TOKEN_EXPIRED\)\n$/,
    );
  });
});

describe('tidings tail (real process)', () => {
  it('should print events until SIGINT, then exit 0 with the cursor to continue from', async () => {
    const p = tcli(['tail', '--url', s.url, '--inbox', 'tail-proc'], { NO_COLOR: '1' });
    await waitFor(() => p.stderr().includes('tidings tail: live'), 'tail to be live', 20_000);
    const event = await client().publish({ type: 'proc.x', inbox: 'tail-proc', severity: 'ERROR' });
    await waitFor(() => p.stdout().includes('proc.x'), 'the event line');
    p.child.kill('SIGINT');
    expect(await p.exited).toBe(0);
    expect(p.stdout()).toBe(
      `${event.timestamp}  ERROR     tail-proc  proc.x  cursor=${event.cursor}\n`,
    );
    expect(p.stderr()).toBe(
      `tidings tail: live\ntidings tail: stopped; continue with --after ${event.cursor}\n`,
    );
  });
});
