/**
 * Stream filters on live events: every `EventFilter` field the stream honours, in both modes.
 * Each case reads its own inbox, publishes events that must and must not match, and ends with
 * one that matches, so the exact list received proves that nothing else was delivered.
 */
import { describe, expect, it } from 'vitest';
import type { PublishEventInput } from '../../src/events/validate.js';
import { eventsOf, serverWithStreams } from './helpers.js';

const t = serverWithStreams();

interface FilterCase {
  name: string;
  filter: Record<string, unknown>;
  /** Events published, with whether the stream must receive them; the last one must match. */
  events: [Omit<PublishEventInput, 'inbox'>, boolean][];
}

const CASES: FilterCase[] = [
  {
    name: 'types, exact',
    filter: { types: ['vm.started', 'host.down'] },
    events: [
      [{ type: 'vm.started' }, true],
      [{ type: 'vm.started.late' }, false],
      [{ type: 'vm' }, false],
      [{ type: 'host.down' }, true],
      [{ type: 'VM.STARTED' }, false],
      [{ type: 'vm.started' }, true],
    ],
  },
  {
    name: 'types, vm.* prefix',
    filter: { types: ['vm.*'] },
    events: [
      [{ type: 'vm.started' }, true],
      [{ type: 'vm' }, false],
      [{ type: 'vm2.created' }, false],
      [{ type: 'host.vm.started' }, false],
      [{ type: 'vm.state.changed' }, true],
    ],
  },
  {
    name: 'severities',
    filter: { severities: ['ERROR', 'CRITICAL'] },
    events: [
      [{ type: 't', severity: 'ERROR' }, true],
      [{ type: 't' }, false],
      [{ type: 't', severity: 'WARNING' }, false],
      [{ type: 't', severity: 'CRITICAL' }, true],
    ],
  },
  {
    name: 'categories',
    filter: { categories: ['connection'] },
    events: [
      [{ type: 't', category: 'billing' }, false],
      [{ type: 't' }, false],
      [{ type: 't', category: 'connection', action: 'register' }, true],
    ],
  },
  {
    name: 'actions',
    filter: { actions: ['register', 'login'] },
    events: [
      [{ type: 't', action: 'logout' }, false],
      [{ type: 't', action: 'login' }, true],
      [{ type: 't' }, false],
      [{ type: 't', action: 'register' }, true],
    ],
  },
  {
    name: 'resourceType and resourceId',
    filter: { resourceType: 'vm', resourceId: 'vm-42' },
    events: [
      [{ type: 't', resource: { type: 'vm', id: 'vm-41' } }, false],
      [{ type: 't', resource: { type: 'host', id: 'vm-42' } }, false],
      [{ type: 't' }, false],
      [{ type: 't', resource: { type: 'vm', id: 'vm-42' } }, true],
    ],
  },
  {
    name: 'resourceType alone',
    filter: { resourceType: 'vm' },
    events: [
      [{ type: 't', resource: { type: 'vm', id: '1' } }, true],
      [{ type: 't', resource: { type: 'vmx', id: '1' } }, false],
      [{ type: 't', resource: { type: 'vm', id: '2' } }, true],
    ],
  },
  {
    name: 'actor',
    filter: { actor: 'user/alice' },
    events: [
      [{ type: 't', actor: 'user/bob' }, false],
      [{ type: 't' }, false],
      [{ type: 't', actor: 'user/alice' }, true],
    ],
  },
  {
    name: 'source',
    filter: { source: 'scheduler' },
    events: [
      [{ type: 't', source: 'scheduler' }, true],
      [{ type: 't', source: 'scheduler-2' }, false],
      [{ type: 't', source: 'scheduler' }, true],
    ],
  },
  {
    name: 'correlationId',
    filter: { correlationId: 'req-1' },
    events: [
      [{ type: 't', correlationId: 'req-2' }, false],
      [{ type: 't', correlationId: 'req-1' }, true],
      [{ type: 't' }, false],
      [{ type: 't', correlationId: 'req-1' }, true],
    ],
  },
  {
    name: 'since (inclusive) and until (exclusive)',
    filter: { since: '2026-01-01T00:00:00Z', until: '2026-02-01T00:00:00Z' },
    events: [
      [{ type: 't', timestamp: '2025-12-31T23:59:59.999Z' }, false],
      [{ type: 't', timestamp: '2026-01-01T00:00:00.000Z' }, true],
      [{ type: 't', timestamp: '2026-02-01T00:00:00.000Z' }, false],
      [{ type: 't', timestamp: '2030-06-01T00:00:00.000Z' }, false],
      [{ type: 't', timestamp: '2026-01-31T23:59:59.999Z' }, true],
    ],
  },
  {
    name: 'several fields together (AND)',
    filter: { types: ['job.*'], severities: ['ERROR'], source: 'runner' },
    events: [
      [{ type: 'job.failed', severity: 'ERROR', source: 'other' }, false],
      [{ type: 'job.failed', severity: 'INFO', source: 'runner' }, false],
      [{ type: 'task.failed', severity: 'ERROR', source: 'runner' }, false],
      [{ type: 'job.failed', severity: 'ERROR', source: 'runner' }, true],
    ],
  },
  {
    name: 'filter.inboxes on top of the inboxes argument',
    filter: { inboxes: ['nowhere'] },
    events: [[{ type: 't' }, false]],
  },
];

describe.each([false, true])('eventStream filters, singleConnection=%s', (singleConnection) => {
  it('should deliver exactly the live events that match each filter', async () => {
    const client = t.s.client({ singleConnection });
    const prefix = `filters-${singleConnection}`;
    const running = [];
    for (const [i, c] of CASES.entries()) {
      const inbox = `${prefix}-${i}`;
      running.push({
        c,
        inbox,
        sub: await t.subs.open(client, { inboxes: [inbox], filter: c.filter }),
      });
    }
    // A witness on every inbox of this describe: it tells when all publishes went through.
    const witness = await t.subs.open(client, { inboxes: [`${prefix}-*`] });
    const expected = new Map<string, string[]>();
    let total = 0;
    for (const { c, inbox } of running) {
      const stored = await t.s.app.publish(c.events.map(([input]) => ({ ...input, inbox })));
      total += stored.length;
      expected.set(
        inbox,
        stored.filter((_, i) => c.events[i]?.[1]).map((e) => e.id),
      );
    }
    await witness.next(total);
    for (const { c, inbox, sub } of running) {
      const want = expected.get(inbox) ?? [];
      if (want.length) await sub.next(want.length);
      expect({ filter: c.name, ids: eventsOf(sub).map((e) => e.id) }).toEqual({
        filter: c.name,
        ids: want,
      });
    }
  });
});
