/**
 * Two instances sharing a store and the Redis bus, in one process: a stream on one receives, in
 * cursor order, what is published on either; a bus message that never arrives is filled from the
 * store. (Real processes on PostgreSQL are in test/process.)
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateEventInput } from '../../src/events/validate.js';
import { tserver, type TServer } from '../tserver.js';
import { eventsOf, streams, waitFor } from '../transport/helpers.js';

const REDIS = process.env.TIDINGS_TEST_REDIS ?? 'redis://127.0.0.1:6379';
let dir: string;
let a: TServer;
let b: TServer;
const subs = streams(() => a);
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tidings-instances-'));
  const config = {
    store: `sqlite:${join(dir, 'events.db')}`,
    bus: `${REDIS}?channel=tidings-test-${randomUUID()}`,
  };
  a = await tserver(config);
  b = await tserver(config);
});
afterAll(async () => {
  await subs.cleanup();
  await a?.stop();
  await b?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('two instances on a Redis bus', () => {
  it('should deliver events published on either instance to a stream on one, in cursor order', async () => {
    const sub = await subs.open(a.client(), { inboxes: ['shared'] });
    const published = [];
    for (let i = 0; i < 20; i++) {
      const on = i % 2 ? a : b;
      published.push(...(await on.app.publish([{ type: `e.${i}`, inbox: 'shared' }])));
    }
    await sub.next(20);
    expect(eventsOf(sub).map((e) => e.cursor)).toEqual(published.map((e) => e.cursor));
  });

  it('should fill an event whose bus message was lost from the store', async () => {
    const sub = await subs.open(a.client(), { inboxes: ['lossy'] });
    // Stored on b without a bus message (as if Redis dropped it), then one that goes through.
    const [lost] = (
      await b.app.store.append([validateEventInput({ type: 'lost', inbox: 'lossy' })])
    ).map((o) => o.event);
    const [after] = await b.app.publish([{ type: 'after', inbox: 'lossy' }]);
    await sub.next(2);
    expect(eventsOf(sub).map((e) => e.cursor)).toEqual([lost?.cursor, after?.cursor]);
  });

  it('should end the streams of a client on every instance when an admin asks any of them', async () => {
    const onB = await streams(() => b).open(b.client(), {
      inboxes: ['kiosk'],
      clientId: 'kiosk-1',
    });
    const other = await streams(() => b).open(b.client(), {
      inboxes: ['kiosk'],
      clientId: 'kiosk-2',
    });
    const ended = await a.gql('mutation { endStreams(clientId: "kiosk-1") }');
    expect(ended.data).toEqual({ endStreams: 0 });
    await waitFor(() => onB.completed, 'the stream on the other instance to end');
    expect(onB.results.at(-1)?.errors?.[0]?.extensions?.code).toBe('STREAM_ENDED');
    expect(other.completed).toBe(false);
    other.unsubscribe();
  });

  it('should stay up when Redis goes away, say so in /readyz, and recover by itself', async () => {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const start = () =>
      spawn('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no'], {
        stdio: 'ignore',
      });
    let redis = start();
    let c: TServer | undefined;
    try {
      await waitFor(() => redis.pid !== undefined, 'redis to start');
      for (let i = 0; ; i++) {
        try {
          c = await tserver({ store: a.app.config.store, bus: `redis://127.0.0.1:${port}` });
          break;
        } catch (err) {
          if (i > 50) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      const server = c;
      const ready = async () =>
        (await (await fetch(`${server.url}/readyz`)).json()) as { status: string; reason?: string };
      const stream = await streams(() => server).open(server.client(), { inboxes: ['outage'] });
      expect((await ready()).status).toBe('ready');

      redis.kill('SIGKILL');
      await waitFor(() => redis.exitCode !== null || redis.signalCode !== null, 'redis to stop');
      let down = await ready();
      for (let i = 0; down.status === 'ready' && i < 50; i++) {
        await new Promise((r) => setTimeout(r, 100));
        down = await ready();
      }
      expect(down).toMatchObject({
        status: 'unavailable',
        reason: expect.stringMatching(/bus:redis/),
      });
      // Published elsewhere while this instance's bus is down: stored, not carried to it.
      const [missed] = await a.app.publish([{ type: 'during.outage', inbox: 'outage' }]);

      redis = start();
      await waitFor(
        () => stream.results.length === 1,
        'the missed event after the reconnection',
        15_000,
      );
      expect(eventsOf(stream).map((e) => e.cursor)).toEqual([missed?.cursor]);
      // The store poll may bring the event before both Redis connections are back.
      let back = await ready();
      for (let i = 0; back.status !== 'ready' && i < 150; i++) {
        await new Promise((r) => setTimeout(r, 100));
        back = await ready();
      }
      expect(back.status).toBe('ready');
      // It said so as events too, for the admins following the system inbox.
      const system = async () =>
        (await server.app.store.page({ clauses: [], first: 100, order: 'OLDEST_FIRST' })).events
          .filter((e) => e.inbox === 'system')
          .map((e) => e.type);
      for (let i = 0; !(await system()).includes('tidings.bus.reconnected') && i < 100; i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(await system()).toEqual(['tidings.bus.disconnected', 'tidings.bus.reconnected']);
    } finally {
      redis.kill('SIGKILL');
      await c?.stop();
    }
  });
});
