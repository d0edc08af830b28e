/**
 * A stalled Redis (connections open, nothing coming through), made by a TCP proxy in front of the
 * machine's server: instance A reaches Redis through the proxy, instance B directly, both on one
 * store. A's /readyz answers 503 within 2 s, A reports tidings.bus.disconnected, its publishes are
 * still acknowledged, and once the stall ends it reports tidings.bus.reconnected and its stream
 * has every event once, in cursor order, those published on B during the stall included.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { within } from '../process/tprocess.js';
import { eventually, expectUnready, tproxy, treadyz, type TProxy } from '../tproxy.js';
import { tserver, type TServer } from '../tserver.js';
import { eventsOf, streams } from '../transport/helpers.js';

const REDIS = process.env.TIDINGS_TEST_REDIS ?? 'redis://127.0.0.1:6379';
/** The deadline of every bus call on A, ms. */
const TIMEOUT_MS = 1_000;

let dir: string;
let proxy: TProxy;
let a: TServer;
let b: TServer;
const subs = streams(() => a);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tidings-bus-stall-'));
  proxy = await tproxy(REDIS);
  const store = `sqlite:${join(dir, 'events.db')}`;
  const channel = `?channel=tidings-test-${randomUUID()}`;
  a = await tserver({ store, bus: `${proxy.via(REDIS)}${channel}`, busTimeoutMs: TIMEOUT_MS });
  b = await tserver({ store, bus: `${REDIS}${channel}` });
});
afterAll(async () => {
  proxy?.resume();
  await subs.cleanup();
  await a?.stop();
  await b?.stop();
  await proxy?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The types of the system events stored, oldest first. */
async function systemEvents(): Promise<string[]> {
  const page = await a.app.store.page({ clauses: [], first: 100, order: 'OLDEST_FIRST' });
  return page.events.filter((e) => e.inbox === 'system').map((e) => e.type);
}

/** Waits until a system event of `type` is stored. */
const reported = (type: string) =>
  eventually(async () => (await systemEvents()).includes(type), `${type} to be reported`);

describe('a stalled Redis', () => {
  it('should answer /readyz 503 within 2 s, report the stall and the recovery, and lose or repeat no event', async () => {
    const sub = await subs.open(a.client(), { inboxes: ['stall'] });
    const [first] = await b.app.publish([{ type: 'stall.first', inbox: 'stall' }]);
    await sub.next(1);
    expect((await treadyz(a.url)).status).toBe(200);

    proxy.stall();
    await expectUnready(a.url, /bus:redis/);
    await reported('tidings.bus.disconnected');

    // Stored on B, whose Redis works: A's subscriber does not get the message.
    const [missed] = await b.app.publish([{ type: 'stall.missed', inbox: 'stall' }]);
    // Published on A: acknowledged once stored, whatever the bus does.
    const [own] = await within(
      a.app.publish([{ type: 'stall.own', inbox: 'stall' }]),
      10_000,
      'a publish on A during the stall',
    );

    proxy.resume();
    await reported('tidings.bus.reconnected');
    await eventually(
      async () => (await treadyz(a.url)).status === 200,
      '/readyz to answer 200 again',
    );
    const [last] = await b.app.publish([{ type: 'stall.last', inbox: 'stall' }]);
    await sub.next(4, 15_000);
    expect(eventsOf(sub).map((e) => e.cursor)).toEqual(
      [first, missed, own, last].map((e) => e?.cursor),
    );
    expect(await systemEvents()).toEqual(['tidings.bus.disconnected', 'tidings.bus.reconnected']);
  });
});
