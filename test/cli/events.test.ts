/**
 * `tidings events` against a real server: the table and NDJSON, filters, order, and --limit
 * across several pages.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTidingsClient,
  type PublishEventInput,
  type TidingsEvent,
} from '../../src/client/index.js';
import { events, type EventsCommandOptions } from '../../src/cli/events.js';
import { main } from '../../src/cli/main.js';
import { tserver, type TServer } from '../tserver.js';

let s: TServer;
/** The small set, oldest first. */
let small: TidingsEvent[];
/** 230 events of one inbox, oldest first. */
let many: TidingsEvent[];

const at = (minute: number) => new Date(Date.UTC(2026, 0, 31, 12, minute)).toISOString();

beforeAll(async () => {
  s = await tserver();
  const client = createTidingsClient({ url: s.url });
  const inputs: PublishEventInput[] = [
    { type: 'vm.started', inbox: 'ev-a', severity: 'INFO', timestamp: at(0), message: 'VM 1 up' },
    { type: 'vm.stopped', inbox: 'ev-a', severity: 'WARNING', timestamp: at(1), actor: 'bob' },
    { type: 'host.down', inbox: 'ev-b', severity: 'CRITICAL', timestamp: at(2), category: 'ops' },
    {
      type: 'vm.crashed',
      inbox: 'ev-b',
      severity: 'ERROR',
      timestamp: at(3),
      message: 'x'.repeat(300),
    },
    { type: 'vm.started', inbox: 'ev-a', severity: 'DEBUG', timestamp: at(4), message: 'a\nb' },
  ];
  small = await client.publishMany(inputs);
  many = await client.publishMany(
    Array.from({ length: 230 }, (_, i) => ({ type: 'bulk.x', inbox: 'ev-many', message: `${i}` })),
  );
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
    json: () =>
      out
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as TidingsEvent),
  };
}

/** Runs `tidings events` in process, without colour unless asked; counts the requests. */
async function run(args: string[], options: EventsCommandOptions = {}) {
  const c = capture();
  let requests = 0;
  const code = await events(
    ['--url', s.url, ...args],
    c.io,
    {},
    {
      colour: false,
      ...options,
      client: {
        fetch: (input, init) => {
          requests++;
          return fetch(input, init);
        },
      },
    },
  );
  return { ...c, code, requests };
}

describe('tidings events', () => {
  it('should print a table, newest first, with one line per event and long cells cut', async () => {
    const r = await run(['--inbox', 'ev-a,ev-b'], { columns: 100 });
    expect(r.err()).toBe('');
    expect(r.code).toBe(0);
    const [header, ...rows] = r.lines();
    expect(header).toMatch(/^TIME {22}SEVERITY {2}INBOX {2}TYPE {8}MESSAGE +CURSOR$/);
    expect(rows).toHaveLength(5);
    const newest = [...small].reverse();
    rows.forEach((row, i) => {
      const e = newest[i] as TidingsEvent;
      expect(
        row.startsWith(`${e.timestamp}  ${e.severity.padEnd(8)}  ${e.inbox}   ${e.type}`),
      ).toBe(true);
      expect(row.endsWith(`  ${e.cursor}`)).toBe(true);
      expect([...row].length).toBeLessThanOrEqual(100);
    });
    expect(rows[0]).toContain('a b');
    expect(rows[1]).toMatch(/ x+… {2}\d+$/);
  });

  it('should colour severities when asked, and cut messages to 80 characters when piped', async () => {
    const coloured = await run(['--inbox', 'ev-b'], { colour: true });
    expect(coloured.out()).toContain('\x1b[1;31mCRITICAL\x1b[0m');
    expect(coloured.out()).toContain('\x1b[31mERROR   \x1b[0m');
    const piped = await run(['--inbox', 'ev-b', '--type', 'vm.crashed']);
    expect(piped.lines()[1]).toContain(`${'x'.repeat(79)}…  `);
  });

  it('should print NDJSON with --json: exactly the client event objects', async () => {
    const r = await run(['--inbox', 'ev-a', '--json']);
    expect(r.code).toBe(0);
    expect(r.json()).toEqual(small.filter((e) => e.inbox === 'ev-a').reverse());
  });

  it('should apply the filters', async () => {
    const ids = async (args: string[]) => (await run([...args, '--json'])).json().map((e) => e.id);
    const [e0, e1, e2, e3, e4] = small.map((e) => e.id);
    expect(await ids(['--type', 'vm.*', '--inbox', 'ev-*'])).toEqual([e4, e3, e1, e0]);
    expect(await ids(['--severity', 'error+', '--inbox', 'ev-a', '--inbox', 'ev-b'])).toEqual([
      e3,
      e2,
    ]);
    expect(
      await ids(['--severity', 'DEBUG', '--severity', 'info', '--inbox', 'ev-a,ev-b']),
    ).toEqual([e4, e0]);
    expect(await ids(['--category', 'ops'])).toEqual([e2]);
    expect(await ids(['--actor', 'bob'])).toEqual([e1]);
    expect(await ids(['--since', at(1), '--until', at(3), '--inbox', 'ev-*'])).toEqual([e2, e1]);
    expect(await ids(['--since', '2026-01-31', '--until', '2026-02-01'])).toEqual([
      e4,
      e3,
      e2,
      e1,
      e0,
    ]);
    expect(await ids(['--since', '1h', '--inbox', 'ev-a,ev-b'])).toEqual([]);
  });

  it('should list oldest first with --order oldest', async () => {
    const r = await run(['--inbox', 'ev-a', '--order', 'OLDEST', '--json']);
    expect(r.json()).toEqual(small.filter((e) => e.inbox === 'ev-a'));
  });

  it('should read several pages up to --limit, and say on stderr that more match', async () => {
    const json = await run(['--inbox', 'ev-many', '--order', 'oldest', '--limit', '210', '--json']);
    expect(json.code).toBe(0);
    expect(json.requests).toBe(3);
    expect(json.json()).toEqual(many.slice(0, 210));
    expect(json.err()).toBe('');

    const table = await run(['--inbox', 'ev-many', '--limit', '120']);
    expect(table.lines()).toHaveLength(121);
    const last = many[many.length - 120] as TidingsEvent;
    expect(table.err()).toBe(
      'tidings events: 120 shown, more match: raise --limit, narrow the filters, or continue ' +
        `with --after ${last.cursor}\n`,
    );
    const rest = await run([
      '--inbox',
      'ev-many',
      '--limit',
      '200',
      '--after',
      last.cursor,
      '--json',
    ]);
    expect(rest.json()).toEqual(many.slice(0, 110).reverse());

    const all = await run(['--inbox', 'ev-many', '--limit', '230', '--json']);
    expect(all.json()).toHaveLength(230);
    expect(all.err()).toBe('');
  });

  it('should list 50 by default, and say so on stderr when nothing matches', async () => {
    expect((await run(['--inbox', 'ev-many', '--json'])).json()).toEqual(many.slice(-50).reverse());
    const none = await run(['--inbox', 'ev-none']);
    expect(none.code).toBe(0);
    expect(none.out()).toBe('');
    expect(none.err()).toBe('tidings events: no events match\n');
  });

  it('should print its usage with --help', async () => {
    const c = capture();
    expect(await main(['events', '--help'], c.io, {})).toBe(0);
    for (const flag of ['--order', '--limit', '--json', '--severity', '--until', '--url']) {
      expect(c.out()).toContain(flag);
    }
  });

  it.each<[string, string[], RegExp]>([
    [
      'an unknown flag',
      ['--colour'],
      /^Unknown option '--colour' \(see "tidings events --help"\)$/,
    ],
    [
      'a bad order',
      ['--order', 'random'],
      /^--order="random" is invalid: expected newest or oldest$/,
    ],
    ['a bad limit', ['--limit', 'ten'], /^--limit="ten" is invalid: expected a whole number/],
    ['a bad severity', ['--severity', 'loud'], /^unknown severity "loud" in --severity/],
    ['a bad date', ['--since', '31/01/2026'], /^--since="31\/01\/2026" is invalid/],
    [
      'an impossible date',
      ['--since', '2020-02-30'],
      /^--since="2020-02-30" is invalid \(day 30 does not exist: February 2020 has 29 days\)/,
    ],
    [
      'an impossible time',
      ['--until', '2026-01-01T23:60:00Z'],
      /^--until="2026-01-01T23:60:00Z" is invalid \(minute 60 does not exist\)/,
    ],
    ['an empty category', ['--category', ' '], /^--category is empty/],
  ])('should refuse %s with one line on stderr and exit 2', async (_name, args, message) => {
    const c = capture();
    expect(await main(['events', '--url', s.url, ...args], c.io, {})).toBe(2);
    expect(c.out()).toBe('');
    expect(
      c
        .err()
        .replace(/^tidings events: /, '')
        .trimEnd(),
    ).toMatch(message);
    expect(c.err().trim().split('\n')).toHaveLength(1);
  });

  it('should exit 1 with the server message on a bad cursor', async () => {
    const r = await run(['--after', 'nonsense']);
    expect(r.code).toBe(1);
    expect(r.out()).toBe('');
    expect(r.err()).toMatch(/^tidings events: .*\(BAD_CURSOR\)\n$/);
  });
});
