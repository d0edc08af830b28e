/**
 * `tidings publish` against a real server: from flags, from stdin (one object, an atomic array,
 * NDJSON in batches), --quiet, bad input (exit 2) and server refusals (exit 1).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTidingsClient, type TidingsEvent } from '../../src/client/index.js';
import { main } from '../../src/cli/main.js';
import { publish } from '../../src/cli/publish.js';
import { hs256, JWT_CONFIG } from '../auth/tokens.js';
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
    events: () =>
      out
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as TidingsEvent),
  };
}

/** Runs `tidings publish` in process with `stdin` as its input; counts the requests sent. */
async function run(args: string[], stdin: string | null = null, env: Record<string, string> = {}) {
  const c = capture();
  let requests = 0;
  const code = await publish(['--url', s.url, ...args], c.io, env, {
    stdin:
      stdin === null ? Object.assign(Readable.from([]), { isTTY: true }) : Readable.from([stdin]),
    client: {
      fetch: (input, init) => {
        requests++;
        return fetch(input, init);
      },
    },
  });
  return { ...c, code, requests };
}

/** The stored events of `inbox`, oldest first. */
async function stored(inbox: string): Promise<TidingsEvent[]> {
  const out: TidingsEvent[] = [];
  for await (const e of createTidingsClient({ url: s.url }).events({
    filter: { inboxes: [inbox] },
  })) {
    out.push(e);
  }
  return out;
}

describe('tidings publish from flags', () => {
  it('should publish one event with every field and print it as one JSON line', async () => {
    const c = capture();
    const code = await main(
      [
        'publish',
        '--url',
        s.url,
        '--type',
        'vm.state_changed',
        '--inbox',
        'pub-flags',
        '--client-id',
        'host-7',
        '--severity',
        'Warning',
        '--message',
        'VM 42 stopped',
        '--body',
        '{"vm":42,"tags":["a"]}',
        '--id',
        'pub-flags-1',
        '--category',
        'vm',
        '--action',
        'stop',
        '--resource',
        'vm:42:a',
        '--actor',
        'alice',
        '--source',
        'orchestrator',
        '--parent-id',
        'p-1',
        '--correlation-id',
        'corr-1',
        '--timestamp',
        '2026-01-31T12:00:00+01:00',
      ],
      c.io,
      {},
    );
    expect(c.err()).toBe('');
    expect(code).toBe(0);
    const [event] = c.events();
    expect(c.events()).toHaveLength(1);
    expect(event).toMatchObject({
      id: 'pub-flags-1',
      type: 'vm.state_changed',
      inbox: 'pub-flags',
      clientId: 'host-7',
      severity: 'WARNING',
      message: 'VM 42 stopped',
      body: { vm: 42, tags: ['a'] },
      category: 'vm',
      action: 'stop',
      resource: { type: 'vm', id: '42:a' },
      actor: 'alice',
      source: 'orchestrator',
      parentId: 'p-1',
      correlationId: 'corr-1',
      timestamp: '2026-01-31T11:00:00.000Z',
    });
    expect(await stored('pub-flags')).toEqual([event]);
  });

  it('should print only the ids with --quiet', async () => {
    const r = await run(['--type', 'q.one', '--inbox', 'pub-quiet', '--quiet']);
    expect(r.code).toBe(0);
    const [event] = await stored('pub-quiet');
    expect(r.out()).toBe(`${event?.id}\n`);
  });

  it('should print its usage with --help, saying how NDJSON is batched', async () => {
    const c = capture();
    expect(await main(['publish', '--help'], c.io, {})).toBe(0);
    expect(c.out()).toMatch(
      /NDJSON\s+one event object per line, published in atomic batches of up\s+to\s+100 lines/,
    );
    for (const flag of ['--type', '--body', '--resource', '--quiet', '--url', '--token']) {
      expect(c.out()).toContain(flag);
    }
  });
});

describe('tidings publish from stdin', () => {
  it('should publish one JSON object, with a severity in any case', async () => {
    const r = await run([], '{"type":"s.one","inbox":"pub-obj","severity":"error","body":[1,2]}\n');
    expect(r.err()).toBe('');
    expect(r.code).toBe(0);
    expect(r.events()).toEqual(await stored('pub-obj'));
    expect(r.events()[0]).toMatchObject({ type: 's.one', severity: 'ERROR', body: [1, 2] });
  });

  it('should publish an array as one atomic batch, and store nothing of a refused one', async () => {
    const events = [1, 2, 3].map((i) => ({ type: `s.arr${i}`, inbox: 'pub-arr' }));
    const r = await run([], JSON.stringify(events, null, 2));
    expect(r.code).toBe(0);
    expect(r.requests).toBe(1);
    expect(r.events().map((e) => e.type)).toEqual(['s.arr1', 's.arr2', 's.arr3']);

    const bad = [
      { type: 'ok', inbox: 'pub-arr-bad' },
      { type: 'not ok', inbox: 'pub-arr-bad' },
    ];
    const refused = await run([], JSON.stringify(bad));
    expect(refused.code).toBe(1);
    expect(refused.out()).toBe('');
    expect(refused.err()).toMatch(
      /^tidings publish: .*type may contain letters.*\(BAD_USER_INPUT\)\n$/,
    );
    expect(await stored('pub-arr-bad')).toEqual([]);
  });

  it('should publish NDJSON of more than 100 lines in batches of 100, all stored in order', async () => {
    const lines = Array.from({ length: 250 }, (_, i) =>
      JSON.stringify({ type: 'nd.line', inbox: 'pub-nd', message: `${i}` }),
    );
    // Blank lines are skipped; CRLF line ends are fine.
    const r = await run(
      ['--quiet'],
      `${lines.slice(0, 10).join('\r\n')}\n\n${lines.slice(10).join('\n')}\n`,
    );
    expect(r.err()).toBe('');
    expect(r.code).toBe(0);
    expect(r.requests).toBe(3);
    const all = await stored('pub-nd');
    expect(all.map((e) => e.message)).toEqual(lines.map((_, i) => `${i}`));
    expect(r.out()).toBe(all.map((e) => `${e.id}\n`).join(''));
  });

  it('should stop at a refused NDJSON batch, naming its line, with the batches before it stored', async () => {
    const lines = Array.from({ length: 150 }, (_, i) =>
      JSON.stringify({
        type: i === 129 ? 'bad type' : 'nd.ok',
        inbox: 'pub-nd-bad',
        message: `${i}`,
      }),
    );
    const r = await run(['--quiet'], lines.join('\n'));
    expect(r.code).toBe(1);
    expect(r.out().trim().split('\n')).toHaveLength(100);
    expect(r.err()).toMatch(
      /^tidings publish: stdin line 130 \(batch of lines 101–150\): .*type may contain .*\(BAD_USER_INPUT\); the 100 events before line 101 were stored; publish the lines from 101 on again\n$/,
    );
    expect(await stored('pub-nd-bad')).toHaveLength(100);
  });

  it.each<[string, string, RegExp]>([
    [
      'a bad NDJSON line',
      '{"type":"a"}\n{"type":"b"}\n{"type":\n{"type":"d"}\n',
      /^stdin line 3 is not JSON: /,
    ],
    [
      'a bad first line',
      '{"type":"a",\n"inbox":}\n',
      /^stdin line 1 is not JSON \(neither one JSON value nor NDJSON\)/,
    ],
    ['a bad array', '[{"type":"a"},]', /^stdin is not a valid JSON array: /],
    ['a line without a type', '{"type":"a"}\n{"inbox":"x"}\n', /^stdin line 2: "type" is missing/],
    ['a line that is no object', '{"type":"a"}\n42\n', /^stdin line 2: expected an event object/],
    [
      'an unknown field',
      '{"type":"a","colour":"red"}',
      /^stdin: unknown field "colour": an event has id, type/,
    ],
    [
      'a bad severity',
      '[{"type":"a","severity":"loud"}]',
      /^stdin, event 0 of the array: unknown severity "loud": expected one of/,
    ],
    [
      'an impossible timestamp on an NDJSON line',
      '{"type":"a"}\n{"type":"b","timestamp":"2020-02-30T00:00:00Z"}\n',
      /^stdin line 2: "timestamp" "2020-02-30T00:00:00Z" is invalid \(day 30 does not exist: February 2020 has 29 days\): expected/,
    ],
    [
      'an impossible timestamp in an array',
      '[{"type":"a","timestamp":"2026-01-01T24:00:00Z"}]',
      /^stdin, event 0 of the array: "timestamp" "2026-01-01T24:00:00Z" is invalid \(hour 24 does not exist/,
    ],
    ['an empty array', '[]', /^stdin holds an empty array/],
    [
      'empty input',
      '  \n',
      /^stdin is empty: pipe JSON events into it, or describe one event with --type/,
    ],
  ])('should refuse %s on stdin with exit 2 and publish nothing', async (_name, input, message) => {
    const r = await run([], input);
    expect(r.code).toBe(2);
    expect(r.requests).toBe(0);
    expect(r.out()).toBe('');
    expect(r.err().replace(/^tidings publish: /, '')).toMatch(message);
    expect(r.err().trim().split('\n')).toHaveLength(1);
  });
});

describe('tidings publish: errors', () => {
  it.each<[string, string[], RegExp]>([
    [
      'an unknown flag',
      ['--type', 'a', '--colour', 'red'],
      /^Unknown option '--colour' \(see "tidings publish --help"\)$/,
    ],
    [
      'a bad severity',
      ['--type', 'a', '--severity', 'fatal'],
      /^unknown severity "fatal" in --severity/,
    ],
    [
      'a bad body',
      ['--type', 'a', '--body', '{vm:42}'],
      /^--body is not JSON \(.*\): quote it, e.g. --body '\{"vm":42\}'$/,
    ],
    [
      'a bad resource',
      ['--type', 'a', '--resource', 'vm'],
      /^--resource="vm" is invalid: expected <type>:<id>, e.g. vm:42$/,
    ],
    ['a bad type', ['--type', 'vm started'], /^--type="vm started" is invalid: use 1–128 letters/],
    [
      'a bad timestamp',
      ['--type', 'a', '--timestamp', '2h'],
      /^--timestamp="2h" is invalid: expected an ISO 8601 date-time .*\(2026-01-31\)$/,
    ],
    [
      'an impossible --timestamp',
      ['--type', 'a', '--timestamp', '2023-02-29T00:00:00Z'],
      /^--timestamp="2023-02-29T00:00:00Z" is invalid \(day 29 does not exist: February 2023 has 28 days\): expected/,
    ],
    [
      'a field without --type',
      ['--inbox', 'x'],
      /^--inbox needs --type; to publish JSON from stdin, put the fields in the JSON$/,
    ],
    ['no --type and a terminal on stdin', [], /^--type is required, or pipe JSON events on stdin/],
    ['a bad TIDINGS_URL', ['--type', 'a'], /^TIDINGS_URL="localhost:4000" is invalid/],
  ])('should refuse %s with exit 2', async (_name, args, message) => {
    const c = capture();
    const code = await publish(
      args,
      c.io,
      { TIDINGS_URL: 'localhost:4000' },
      {
        stdin: Object.assign(Readable.from([]), { isTTY: true }),
      },
    );
    expect(code).toBe(2);
    expect(c.out()).toBe('');
    expect(
      c
        .err()
        .replace(/^tidings publish: /, '')
        .trimEnd(),
    ).toMatch(message);
    expect(c.err().trim().split('\n')).toHaveLength(1);
  });

  it('should exit 1 with the message and code of a CONFLICT', async () => {
    expect((await run(['--type', 'c.one', '--id', 'pub-conflict', '--message', 'a'])).code).toBe(0);
    const again = await run(['--type', 'c.one', '--id', 'pub-conflict', '--message', 'b']);
    expect(again.code).toBe(1);
    expect(again.out()).toBe('');
    expect(again.err()).toMatch(/^tidings publish: .*pub-conflict.*\(CONFLICT\)\n$/);
  });

  it('should exit 1 with the reason when the server cannot be reached', async () => {
    // A port nothing listens on: one that was just free.
    const free = createServer();
    await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve));
    const { port } = free.address() as AddressInfo;
    await new Promise((resolve) => free.close(resolve));
    const url = `http://127.0.0.1:${port}`;
    const c = capture();
    const options = { client: { publishAttempts: 1 } };
    expect(await publish(['--url', url, '--type', 'a'], c.io, {}, options)).toBe(1);
    expect(c.err()).toBe(
      `tidings publish: Tidings at ${url} could not be reached: fetch failed (ECONNREFUSED): ` +
        `is the server running at ${url}? Set --url or TIDINGS_URL\n`,
    );
  });

  describe('with TIDINGS_AUTH=jwt', () => {
    let secure: TServer;
    beforeAll(async () => {
      secure = await tserver(JWT_CONFIG);
    });
    afterAll(() => secure.stop());

    it('should exit 1 on FORBIDDEN and UNAUTHENTICATED, never printing the token', async () => {
      const reader = await hs256({ sub: 'reader', scope: 'events:read' });
      const c = capture();
      expect(
        await publish(['--url', secure.url, '--type', 'a'], c.io, { TIDINGS_TOKEN: reader }),
      ).toBe(1);
      expect(c.err()).toMatch(
        /^tidings publish: .*lacks the scope "events:publish" \(FORBIDDEN\)\n$/,
      );
      expect(c.err()).not.toContain(reader);

      const none = capture();
      expect(await publish(['--url', secure.url, '--type', 'a'], none.io, {})).toBe(1);
      expect(none.err()).toMatch(
        /\(UNAUTHENTICATED\): pass a token with --token or TIDINGS_TOKEN\n$/,
      );

      const writer = await hs256({ sub: 'writer', scope: 'events:publish', inboxes: ['w'] });
      const ok = capture();
      expect(
        await publish(
          ['--url', secure.url, '--type', 'a', '--inbox', 'w', '--token', writer],
          ok.io,
          {},
        ),
      ).toBe(0);
      expect(ok.events()[0]).toMatchObject({ type: 'a', inbox: 'w' });
    });
  });
});

describe('tidings publish (real process)', () => {
  it('should publish NDJSON piped on stdin, and exit 2 naming the line of bad JSON', async () => {
    const p = tcli(['publish', '--url', s.url]);
    p.child.stdin.end(
      '{"type":"proc.a","inbox":"pub-proc"}\n{"type":"proc.b","inbox":"pub-proc"}\n',
    );
    expect(await p.exited).toBe(0);
    expect(p.stderr()).toBe('');
    const printed = p
      .stdout()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as TidingsEvent);
    expect(printed).toEqual(await stored('pub-proc'));

    const bad = tcli(['publish', '--url', s.url]);
    bad.child.stdin.end('{"type":"proc.c"}\n{"type":"proc.d"\n');
    expect(await bad.exited).toBe(2);
    expect(bad.stdout()).toBe('');
    expect(bad.stderr()).toMatch(/^tidings publish: stdin line 2 is not JSON: /);
  });
});
