/**
 * An orchestrator's view: with the typed client it follows three host inboxes while hosts publish,
 * through a graceful restart and a kill -9 of the server, and ends with every acknowledged event
 * exactly once, in order.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createTidingsClient, type TidingsEvent } from '../../src/client/index.js';
import { cleanupProcesses, startTidings, tempStore, waitUntil } from '../process/tprocess.js';

afterEach(() => cleanupProcesses());

const HOSTS = ['host-1', 'host-2', 'host-3'];

describe('an orchestrator on the typed client', () => {
  it('should follow three host inboxes through restarts and see every event exactly once', async () => {
    const { file } = tempStore();
    let server = await startTidings({ file });
    const url = server.url;
    const options = { url, keepaliveMs: 15_000, backoff: { minMs: 50, maxMs: 500 } };
    const orchestrator = createTidingsClient(options);
    const received: TidingsEvent[] = [];
    const sub = orchestrator.subscribe({ inboxes: HOSTS });
    const following = (async () => {
      for await (const event of sub) received.push(event);
    })();
    await waitUntil(() => sub.state === 'live', 'the subscription to be live', 10_000);

    // The hosts publish through the same client library; a publish whose answer is lost in a
    // restart is retried with its id, so it is stored once.
    const hosts = createTidingsClient({ ...options, publishAttempts: 50 });
    const acked: TidingsEvent[] = [];
    let stop = false;
    const publishing = (async () => {
      for (let i = 0; !stop; i++) {
        const host = HOSTS[i % HOSTS.length] as string;
        acked.push(await hosts.publish({ type: 'host.heartbeat', inbox: host, message: `${i}` }));
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();

    const atLeast = (n: number) => waitUntil(() => received.length >= n, `${n} events`, 20_000);
    await atLeast(30);
    await server.kill('SIGTERM');
    server = await startTidings({ file, port: server.port });
    await atLeast(received.length + 30);
    await server.kill('SIGKILL');
    server = await startTidings({ file, port: server.port });
    await atLeast(received.length + 30);
    stop = true;
    await publishing;
    await waitUntil(
      () => received.at(-1)?.cursor === acked.at(-1)?.cursor,
      'the last acknowledged event',
      20_000,
    );
    sub.close();
    await following;

    expect(received.map((e) => e.id)).toEqual(acked.map((e) => e.id));
    expect(new Set(received.map((e) => e.id)).size).toBe(received.length);
    expect(sub.reconnects).toBeGreaterThanOrEqual(2);
    expect(sub.state).toBe('closed');
  }, 90_000);
});
