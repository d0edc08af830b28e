/**
 * Resume over graphql-ws with real `tidings serve` processes on a durable SQLite file: subscribers
 * using graphql-ws's own client, which resubscribe with `after: <last cursor>` whenever their
 * operation ends (the `SHUTTING_DOWN` of a graceful stop, the dropped socket of a `kill -9`, the
 * refused connection while the server is down), receive the acknowledged sequence exactly once
 * and in order.
 */
import { createClient } from 'graphql-ws';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  cleanupProcesses,
  pause,
  publishUntilAcked,
  readAll,
  resumingSubscriber,
  sequenceProblems,
  startTidings,
  tempStore,
  waitUntil,
  within,
  type IdCursor,
  type TestEventInput,
} from './tprocess.js';

const stoppers: (() => void)[] = [];
afterEach(async () => {
  for (const stop of stoppers.splice(0)) stop();
  await cleanupProcesses();
});

const testEvent = (id: string, inbox: string, n: number): TestEventInput => ({
  id,
  type: 'process.ws',
  inbox,
  message: `event ${id}`,
  body: { n },
});

describe('graphql-ws subscribers across restarts', () => {
  it('should deliver the acknowledged sequence exactly once, in order, across a graceful stop and a kill -9', async () => {
    const { file } = tempStore();
    let server = await startTidings({ file });
    const { url, port } = server;
    const inbox = 'ws-resume';
    const loops = new AbortController();
    stoppers.push(() => loops.abort());
    const [genesis] = (
      await publishUntilAcked(url, [testEvent('w-genesis', inbox, -1)], loops.signal)
    ).acked as [IdCursor];

    const subscribers = Array.from({ length: 10 }, () =>
      resumingSubscriber({
        url,
        inbox,
        after: genesis.cursor,
        // graphql-ws's own client, no retries of its own: the subscriber resumes with `after`.
        connect: () =>
          createClient({
            url: `${url.replace(/^http/, 'ws')}/graphql`,
            webSocketImpl: WebSocket,
            retryAttempts: 0,
          }),
      }),
    );
    stoppers.push(() => subscribers.forEach((s) => s.stop()));

    const total = 150;
    const sequence: IdCursor[] = [];
    const publishing = (async () => {
      for (let n = 0; n < total; n++) {
        const { acked } = await publishUntilAcked(
          url,
          [testEvent(`w-${n}`, inbox, n)],
          loops.signal,
        );
        sequence.push(...acked);
        await pause(10);
      }
    })();
    publishing.catch(() => {});
    const caughtUp = (n: number) =>
      sequence.length >= n && subscribers.every((s) => s.ids.has((sequence[n - 1] as IdCursor).id));
    const progress = () =>
      `(${sequence.length} acked; received: ${subscribers.map((s) => s.received.length).join(',')})`;

    await waitUntil(() => caughtUp(50), 'every subscriber to receive 50 events', 30_000, progress);
    expect(await within(server.kill('SIGTERM'), 15_000, 'exit after SIGTERM')).toEqual({
      code: 0,
      signal: null,
    });
    server = await startTidings({ file, port });
    await waitUntil(
      () => caughtUp(100),
      'every subscriber to receive 100 events',
      30_000,
      progress,
    );
    // The graceful stop ended every stream with the resume hint.
    expect(subscribers.filter((s) => !s.errorCodes.includes('SHUTTING_DOWN'))).toEqual([]);

    expect(await server.kill('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
    server = await startTidings({ file, port });
    await within(publishing, 60_000, 'the publisher');
    expect(sequence).toHaveLength(total);
    expect(sequenceProblems(sequence)).toEqual([]);
    expect((await readAll(url)).filter((e) => e.cursor > genesis.cursor)).toEqual(sequence);
    await waitUntil(() => caughtUp(total), 'every subscriber to catch up', 30_000, progress);
    subscribers.forEach((s) => s.stop());

    const expected = sequence.map((e) => e.id);
    for (const s of subscribers) {
      expect(s.received.map((e) => e.id)).toEqual(expected);
      expect(s.errorCodes.filter((c) => c !== 'SHUTTING_DOWN')).toEqual([]);
      // The kill -9 dropped the socket: at least the first, the graceful and the abrupt one.
      expect(s.connections).toBeGreaterThanOrEqual(3);
    }
  }, 120_000);
});
