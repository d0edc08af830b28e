/**
 * Targeting, as DESIGN.md's `eventStream` rules say: inboxes (default `global`, several per
 * stream, omitted means all, `prefix*` patterns) and client targeting (a stream with `clientId`
 * gets broadcast events plus its own targeted ones; without, broadcast only).
 *
 * Negative checks need no sleep: every scenario ends with an event the stream must receive, and
 * streams see events in cursor order, so once it arrived anything wrongly delivered would have too.
 */
import { describe, expect, it } from 'vitest';
import type { PublishEventInput } from '../../src/events/validate.js';
import { eventsOf, type Subscription, serverWithStreams } from './helpers.js';

const t = serverWithStreams();

/** Publishes `inputs` one batch, then waits until `sub` received `expected` and returns the ids. */
async function publishAndCollect(
  sub: Subscription,
  inputs: PublishEventInput[],
  expected: number,
): Promise<string[]> {
  await t.s.app.publish(inputs);
  await sub.next(expected);
  return eventsOf(sub).map((e) => e.id);
}

describe.each([false, true])('eventStream targeting, singleConnection=%s', (singleConnection) => {
  const client = () => t.s.client({ singleConnection });
  const tag = singleConnection ? 'single' : 'distinct';
  let n = 0;
  /** A unique event id, so the assertions name events. */
  const id = (name: string) => `${tag}-${name}-${++n}`;

  it('should put an event published without an inbox in `global`, delivered to a stream on `global`', async () => {
    const sub = await t.subs.open(client(), { inboxes: ['global'] });
    const [plain, other, last] = [id('plain'), id('other'), id('last')];
    const ids = await publishAndCollect(
      sub,
      [
        { id: plain, type: 't' },
        { id: other, type: 't', inbox: 'elsewhere' },
        { id: last, type: 't', inbox: 'global' },
      ],
      2,
    );
    expect(ids).toEqual([plain, last]);
    expect(eventsOf(sub)[0]?.inbox).toBe('global');
  });

  it('should deliver only the named inbox, and every named inbox of a stream with several', async () => {
    const one = await t.subs.open(client(), { inboxes: ['t-a'] });
    const two = await t.subs.open(client(), { inboxes: ['t-a', 't-b'] });
    const [a1, b1, c1, a2, b2] = ['a1', 'b1', 'c1', 'a2', 'b2'].map(id);
    await t.s.app.publish([
      { id: a1, type: 't', inbox: 't-a' },
      { id: b1, type: 't', inbox: 't-b' },
      { id: c1, type: 't', inbox: 't-c' },
      { id: a2, type: 't', inbox: 't-a' },
      { id: b2, type: 't', inbox: 't-b' },
    ]);
    await Promise.all([one.next(2), two.next(4)]);
    expect(eventsOf(one).map((e) => e.id)).toEqual([a1, a2]);
    // b2 is last: once it arrived, c1 would have too.
    expect(eventsOf(two).map((e) => e.id)).toEqual([a1, b1, a2, b2]);
  });

  it('should give a stream with clientId "a" the broadcast events plus those targeted to "a", never those targeted to "b"', async () => {
    const sub = await t.subs.open(client(), { inboxes: ['t-clients'], clientId: 'a' });
    const [broadcast, forA, forB, forAElsewhere, last] = [
      'broadcast',
      'forA',
      'forB',
      'forAElsewhere',
      'last',
    ].map(id);
    const ids = await publishAndCollect(
      sub,
      [
        { id: broadcast, type: 't', inbox: 't-clients' },
        { id: forA, type: 't', inbox: 't-clients', clientId: 'a' },
        { id: forB, type: 't', inbox: 't-clients', clientId: 'b' },
        { id: forAElsewhere, type: 't', inbox: 't-other', clientId: 'a' },
        { id: last, type: 't', inbox: 't-clients', clientId: 'a' },
      ],
      3,
    );
    expect(ids).toEqual([broadcast, forA, last]);
    expect(eventsOf(sub).map((e) => e.clientId)).toEqual([null, 'a', 'a']);
  });

  it('should give a stream without clientId the broadcast events only', async () => {
    const sub = await t.subs.open(client(), { inboxes: ['t-broadcast'] });
    const [forA, broadcast, forB, last] = ['forA', 'broadcast', 'forB', 'last'].map(id);
    const ids = await publishAndCollect(
      sub,
      [
        { id: forA, type: 't', inbox: 't-broadcast', clientId: 'a' },
        { id: broadcast, type: 't', inbox: 't-broadcast' },
        { id: forB, type: 't', inbox: 't-broadcast', clientId: 'b' },
        { id: last, type: 't', inbox: 't-broadcast' },
      ],
      2,
    );
    expect(ids).toEqual([broadcast, last]);
  });

  it('should give a stream without inboxes every inbox, with client targeting still applied', async () => {
    const all = await t.subs.open(client(), {});
    const allForA = await t.subs.open(client(), { clientId: 'a' });
    const [x, y, forA, forB, g] = ['x', 'y', 'forA', 'forB', 'g'].map(id);
    await t.s.app.publish([
      { id: x, type: 't', inbox: 'any-x' },
      { id: y, type: 't', inbox: 'any-y' },
      { id: forA, type: 't', inbox: 'any-z', clientId: 'a' },
      { id: forB, type: 't', inbox: 'any-z', clientId: 'b' },
      { id: g, type: 't' },
    ]);
    await Promise.all([all.next(3), allForA.next(4)]);
    expect(eventsOf(all).map((e) => e.id)).toEqual([x, y, g]);
    expect(eventsOf(allForA).map((e) => e.id)).toEqual([x, y, forA, g]);
  });

  it('should match inbox patterns ending in * by prefix', async () => {
    const sub = await t.subs.open(client(), { inboxes: ['pdfm*'] });
    const withClient = await t.subs.open(client(), { inboxes: ['pdfm*', 'exact'], clientId: 'c' });
    const [p1, other, p2, targeted, exact, last] = [
      'p1',
      'other',
      'p2',
      'targeted',
      'exact',
      'last',
    ].map(id);
    await t.s.app.publish([
      { id: p1, type: 't', inbox: 'pdfm' },
      { id: other, type: 't', inbox: 'pdf' },
      { id: p2, type: 't', inbox: 'pdfm-42' },
      { id: targeted, type: 't', inbox: 'pdfm-7', clientId: 'c' },
      { id: exact, type: 't', inbox: 'exact' },
      { id: last, type: 't', inbox: 'pdfm.last' },
    ]);
    await Promise.all([sub.next(3), withClient.next(5)]);
    expect(eventsOf(sub).map((e) => e.id)).toEqual([p1, p2, last]);
    expect(eventsOf(withClient).map((e) => e.id)).toEqual([p1, p2, targeted, exact, last]);
  });

  it('should deliver nothing to a stream on an empty inbox list', async () => {
    const none = await t.subs.open(client(), { inboxes: [] });
    const witness = await t.subs.open(client(), {});
    await t.s.app.publish([{ type: 't', inbox: 'empty-list' }, { type: 't' }]);
    await witness.next(2);
    expect(none.results).toEqual([]);
  });
});
