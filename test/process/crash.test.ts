/**
 * Crash safety and resume with real `tidings serve` processes on a durable SQLite file: an
 * acknowledged publish survives `kill -9`, retries are idempotent, subscribers that resume from
 * their last cursor lose and repeat nothing across graceful and abrupt restarts, and SIGTERM ends
 * every stream with a resume hint and exits 0.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  cleanupProcesses,
  describeFailure,
  lastEventIdSubscriber,
  pause,
  publish,
  publishUntilAcked,
  rawSse,
  readAll,
  RESUME_SUBSCRIPTION,
  resumingSubscriber,
  sequenceProblems,
  startTidings,
  tempStore,
  waitUntil,
  within,
  type IdCursor,
  type RawSse,
  type ResumingSubscriber,
  type TestEventInput,
} from './tprocess.js';

/** Things to stop after each test, whatever its outcome (publisher loops, subscribers). */
const stoppers: (() => void)[] = [];

afterEach(async () => {
  for (const stop of stoppers.splice(0)) stop();
  await cleanupProcesses();
});

/** An event whose content is a function of its id, so a retry resends exactly the same event. */
function testEvent(id: string, inbox: string, publisher: number, n: number): TestEventInput {
  return {
    id,
    type: 'process.test',
    inbox,
    message: `event ${id}`,
    body: { publisher, n, padding: 'x'.repeat(64) },
  };
}

/** A stop switch for loops, registered with the `afterEach` hook. */
function stopSwitch(): AbortController {
  const controller = new AbortController();
  stoppers.push(() => controller.abort());
  return controller;
}

describe('tidings serve, killed and restarted', () => {
  it('should keep every acknowledged publish across kill -9, and accept retries of the others idempotently', async () => {
    const { file } = tempStore();
    const first = await startTidings({ file });
    const { url, port } = first;
    const inbox = 'crash';

    /** id -> cursor of every acknowledged event. */
    const acked = new Map<string, string>();
    /** Publishes that got no acknowledgement: their inputs, exactly as sent. */
    const unacked: TestEventInput[][] = [];
    /** Acknowledged publishes, in order of acknowledgement. */
    const ackedRequests: TestEventInput[][] = [];
    /** Answers that were not acknowledgements (there should be none before the kill). */
    const refusals: string[] = [];
    const networkFailures: string[] = [];
    const loops = stopSwitch();
    let requests = 0;

    const publisher = async (p: number) => {
      for (let n = 0; !loops.signal.aborted; n++) {
        // Every fifth call is a publishEvents batch of 10; the others are single publishEvent.
        const size = n % 5 === 4 ? 10 : 1;
        const inputs = Array.from({ length: size }, (_, i) =>
          testEvent(`k${p}-${n}-${i}`, inbox, p, n),
        );
        requests++;
        try {
          const { answer, acked: events } = await publish(url, inputs);
          if (events && events.map((e) => e.id).join() === inputs.map((e) => e.id).join()) {
            for (const e of events) acked.set(e.id, e.cursor);
            ackedRequests.push(inputs);
          } else {
            refusals.push(`HTTP ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`);
            unacked.push(inputs);
          }
        } catch (err) {
          networkFailures.push(describeFailure(err));
          unacked.push(inputs);
        }
      }
    };

    const started = Date.now();
    const running = Array.from({ length: 8 }, (_, p) => publisher(p));
    await waitUntil(
      () => acked.size >= 500 && Date.now() - started >= 1_000,
      'hundreds of acknowledged publishes',
      30_000,
      () => `(${acked.size} acked, ${refusals.length} refused: ${refusals.slice(0, 3).join('; ')})`,
    );
    const killing = first.kill('SIGKILL');
    // Set in the same turn as the signal: no publish starts after the kill.
    loops.abort();
    expect(await killing).toEqual({ code: null, signal: 'SIGKILL' });
    await Promise.all(running);
    const ackedAtKill = acked.size;

    expect(refusals).toEqual([]);

    const second = await startTidings({ file, port });
    expect(second.url).toBe(url);
    const stored = await readAll(url);
    const storedCursor = new Map(stored.map((e) => [e.id, e.cursor]));

    expect(sequenceProblems(stored)).toEqual([]);
    const lost = [...acked].filter(([id, cursor]) => storedCursor.get(id) !== cursor);
    expect(lost).toEqual([]);
    // A batch is atomic, even when the process dies while committing it.
    const torn = unacked.filter((inputs) => {
      const present = inputs.filter((e) => storedCursor.has(e.id)).length;
      return present !== 0 && present !== inputs.length;
    });
    expect(torn).toEqual([]);
    // Nothing is stored that was not sent.
    const sentIds = new Set([...acked.keys(), ...unacked.flat().map((e) => e.id)]);
    expect(stored.filter((e) => !sentIds.has(e.id))).toEqual([]);
    const storedUnacked = unacked.flat().filter((e) => storedCursor.has(e.id)).length;

    // Retrying every unacknowledged publish (the kill may have come after every request in
    // flight was answered: then there is none), and the last acknowledged ones, with the same
    // ids and content succeeds; the events stored before the kill come back with their cursor,
    // and none is stored twice.
    const retryProblems: string[] = [];
    for (const inputs of [...unacked, ...ackedRequests.slice(-16)]) {
      const { answer, acked: events } = await publish(url, inputs);
      if (!events) {
        retryProblems.push(`HTTP ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`);
        continue;
      }
      inputs.forEach((input, i) => {
        const event = events[i];
        const before = storedCursor.get(input.id);
        if (event?.id !== input.id) retryProblems.push(`${input.id}: answered ${event?.id}`);
        else if (before !== undefined && event.cursor !== before) {
          retryProblems.push(`${input.id}: stored at ${before}, retry answered ${event.cursor}`);
        } else acked.set(input.id, event.cursor);
      });
    }
    expect(retryProblems).toEqual([]);

    const after = await readAll(url);
    expect(sequenceProblems(after)).toEqual([]);
    expect(after.length).toBe(sentIds.size);
    expect(new Set(after.map((e) => e.id))).toEqual(sentIds);
    expect(after.filter((e) => acked.get(e.id) !== e.cursor)).toEqual([]);

    expect(await second.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    console.info(
      `kill -9: ${requests} publish requests, ${ackedAtKill} events acknowledged before the kill, ` +
        `${unacked.length} requests unacknowledged (${networkFailures.length} failed on the ` +
        `network: ${[...new Set(networkFailures)].join(', ')}), ${storedUnacked} of their ` +
        `${unacked.flat().length} events stored anyway; ${after.length} events after the retries`,
    );
  }, 120_000);

  it('should deliver the acknowledged sequence exactly once, in order, to 50 resuming subscribers across a graceful and an abrupt restart', async () => {
    const { file } = tempStore();
    let server = await startTidings({ file });
    const { url, port } = server;
    const inbox = 'resume';
    const loops = stopSwitch();

    const [genesis] = (
      await publishUntilAcked(url, [testEvent('r-genesis', inbox, 0, -1)], loops.signal)
    ).acked as [IdCursor];

    const subscribers: ResumingSubscriber[] = [];
    for (let i = 0; i < 50; i++) {
      subscribers.push(resumingSubscriber({ url, inbox, after: genesis.cursor }));
    }
    const getters: ResumingSubscriber[] = [];
    for (let i = 0; i < 3; i++) {
      getters.push(lastEventIdSubscriber({ url, inbox, after: genesis.cursor }));
    }
    const everyone = [...subscribers, ...getters];
    stoppers.push(() => everyone.forEach((s) => s.stop()));

    // A steady trickle from one publisher, each event resent with the same id until acknowledged.
    const total = 300;
    const sequence: IdCursor[] = [];
    const publisherFailures: string[] = [];
    const publishing = (async () => {
      for (let n = 0; n < total; n++) {
        const { acked, failures } = await publishUntilAcked(
          url,
          [testEvent(`r-${n}`, inbox, 0, n)],
          loops.signal,
        );
        sequence.push(...acked);
        publisherFailures.push(...failures);
        await pause(10);
      }
    })();
    publishing.catch(() => {});

    /** Whether every subscriber received the `n`th acknowledged event. */
    const caughtUp = (n: number) =>
      sequence.length >= n && everyone.every((s) => s.ids.has((sequence[n - 1] as IdCursor).id));
    const shutdowns = (s: ResumingSubscriber) =>
      s.errorCodes.filter((c) => c === 'SHUTTING_DOWN').length;
    const progress = () =>
      `(${sequence.length} acked; received: ${everyone.map((s) => s.received.length).join(',')})`;

    await waitUntil(
      () => caughtUp(100),
      'every subscriber to receive 100 events',
      30_000,
      progress,
    );
    expect(await within(server.kill('SIGTERM'), 15_000, 'exit after SIGTERM')).toEqual({
      code: 0,
      signal: null,
    });
    server = await startTidings({ file, port });

    await waitUntil(
      () => caughtUp(200),
      'every subscriber to receive 200 events',
      30_000,
      progress,
    );
    // Every stream was ended by the graceful stop with the resume hint.
    expect(everyone.flatMap((s, i) => (shutdowns(s) === 0 ? [i] : []))).toEqual([]);
    expect(await server.kill('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
    server = await startTidings({ file, port });

    await within(publishing, 60_000, 'the publisher');
    expect(sequence).toHaveLength(total);
    expect(sequenceProblems(sequence)).toEqual([]);
    const expected = sequence.map((e) => e.id);

    // The store holds exactly the acknowledged sequence after the genesis event.
    const stored = (await readAll(url)).filter((e) => e.cursor > genesis.cursor);
    expect(stored).toEqual(sequence);

    await waitUntil(
      () => caughtUp(total),
      'every subscriber to receive the last event',
      30_000,
      progress,
    );
    // A last graceful stop flushes anything still in flight (an extra event would show): every
    // subscriber has received everything once its stream ended with SHUTTING_DOWN.
    const before = everyone.map(shutdowns);
    expect(await server.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    await waitUntil(
      () => everyone.every((s, i) => shutdowns(s) > (before[i] as number)),
      'every stream to end with SHUTTING_DOWN',
      10_000,
    );
    everyone.forEach((s) => s.stop());

    const wrong = everyone
      .map((s, i) => ({ i, ids: s.received.map((e) => e.id) }))
      .filter(({ ids }) => ids.join() !== expected.join())
      .map(({ i, ids }) => {
        const at = ids.findIndex((id, k) => id !== expected[k]);
        return `subscriber ${i}: ${ids.length} events, first difference at ${at}: ${ids[at]} instead of ${expected[at]}`;
      });
    expect(wrong).toEqual([]);
    expect(everyone.flatMap((s) => sequenceProblems(s.received))).toEqual([]);
    // No stream ended with another error.
    expect(everyone.flatMap((s) => s.errorCodes.filter((c) => c !== 'SHUTTING_DOWN'))).toEqual([]);

    const connections = everyone.map((s) => s.connections);
    console.info(
      `restarts: ${total} events acknowledged, ${publisherFailures.length} failed publish attempts ` +
        `retried (${[...new Set(publisherFailures.map((f) => f.slice(0, 40)))].join(', ')}); ` +
        `${subscribers.length} graphql-sse and ${getters.length} Last-Event-ID subscribers, ` +
        `${Math.min(...connections)}–${Math.max(...connections)} connections each`,
    );
  }, 120_000);

  it('should end every stream with SHUTTING_DOWN then complete on SIGTERM, exit 0, and keep every acknowledged publish', async () => {
    const { file } = tempStore();
    const first = await startTidings({ file });
    const { url, port } = first;
    const inbox = 'shutdown';

    const streams: RawSse[] = [];
    stoppers.push(() => streams.forEach((s) => s.close()));
    for (let i = 0; i < 10; i++) {
      streams.push(await rawSse(url, RESUME_SUBSCRIPTION, { inboxes: [inbox], after: null }));
    }

    const acked = new Map<string, string>();
    /** Publishes answered with anything but an acknowledgement, or not answered. */
    const failed: { ids: string[]; how: string }[] = [];
    const loops = stopSwitch();
    const publisher = async (p: number) => {
      for (let n = 0; !loops.signal.aborted; n++) {
        const size = n % 4 === 3 ? 10 : 1;
        const inputs = Array.from({ length: size }, (_, i) =>
          testEvent(`s${p}-${n}-${i}`, inbox, p, n),
        );
        try {
          const { answer, acked: events } = await publish(url, inputs);
          if (events) for (const e of events) acked.set(e.id, e.cursor);
          else {
            const code = answer.body?.errors?.[0]?.extensions?.code ?? '';
            failed.push({ ids: inputs.map((e) => e.id), how: `HTTP ${answer.status} ${code}` });
          }
        } catch (err) {
          failed.push({ ids: inputs.map((e) => e.id), how: describeFailure(err) });
        }
        // Once the server is gone, do not spin on refused connections.
        if (failed.length > 0) await pause(20);
      }
    };
    const running = Array.from({ length: 4 }, (_, p) => publisher(p));

    const events = (s: RawSse) => s.frames.filter((f) => f.event === 'next' && f.id !== null);
    await waitUntil(
      () => acked.size >= 200 && streams.every((s) => events(s).length > 0),
      'acknowledged publishes and events on every stream',
      30_000,
      () => `(${acked.size} acked, failures: ${failed.map((f) => f.how).join('; ')})`,
    );
    expect(failed).toEqual([]);

    const exit = await within(first.kill('SIGTERM'), 10_000, 'exit after SIGTERM');
    loops.abort();
    await Promise.all(running);
    expect(exit).toEqual({ code: 0, signal: null });

    await waitUntil(() => streams.every((s) => s.ended), 'every stream to end', 10_000);
    const streamProblems: string[] = [];
    streams.forEach((s, i) => {
      const last = s.frames.at(-1);
      const shutdown = s.frames.at(-2);
      const payload = JSON.parse(shutdown?.data ?? 'null') as {
        errors?: { extensions?: { code?: string } }[];
      } | null;
      if (s.ending !== 'end') streamProblems.push(`stream ${i} ended with ${s.ending}`);
      if (last?.event !== 'complete') {
        streamProblems.push(`stream ${i} last frame: ${JSON.stringify(last)}`);
      }
      if (
        shutdown?.event !== 'next' ||
        payload?.errors?.[0]?.extensions?.code !== 'SHUTTING_DOWN'
      ) {
        streamProblems.push(`stream ${i} frame before the last: ${JSON.stringify(shutdown)}`);
      }
    });
    expect(streamProblems).toEqual([]);

    const second = await startTidings({ file, port });
    const stored = await readAll(url);
    const storedCursor = new Map(stored.map((e) => [e.id, e.cursor]));
    expect(sequenceProblems(stored)).toEqual([]);

    // Every stream received a contiguous part of the stored sequence: nothing skipped live.
    const gaps = streams.flatMap((s, i) => {
      const got: IdCursor[] = events(s).map((f) => {
        const e = (JSON.parse(f.data ?? '{}') as { data: { eventStream: IdCursor } }).data
          .eventStream;
        return { id: e.id, cursor: e.cursor };
      });
      const from = stored.findIndex((e) => e.cursor === got[0]?.cursor);
      const want = stored.slice(from, from + got.length);
      return got.map((e) => e.id).join() === want.map((e) => e.id).join() && from !== -1
        ? []
        : [`stream ${i}: ${got.length} events not contiguous in the store from ${got[0]?.cursor}`];
    });
    expect(gaps).toEqual([]);

    // Every acknowledged publish is stored, at the cursor it was acknowledged with.
    expect([...acked].filter(([id, cursor]) => storedCursor.get(id) !== cursor)).toEqual([]);
    // A publish in flight during the stop is either acknowledged or not stored: none is answered
    // with an error (or has its connection reset) although its events were committed.
    const storedButFailed = failed.filter((f) => f.ids.some((id) => storedCursor.has(id)));
    expect(storedButFailed).toEqual([]);

    expect(await second.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    const hows = new Map<string, number>();
    for (const f of failed) hows.set(f.how, (hows.get(f.how) ?? 0) + 1);
    console.info(
      `SIGTERM: ${acked.size} events acknowledged, ${stored.length} stored; ` +
        `${streams.length} streams with ${Math.min(...streams.map((s) => events(s).length))}–` +
        `${Math.max(...streams.map((s) => events(s).length))} events each; unacknowledged ` +
        `publishes: ${[...hows].map(([how, count]) => `${count}× ${how}`).join(', ') || 'none'}`,
    );
  }, 120_000);
});
