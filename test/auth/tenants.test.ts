/**
 * Event ids are scoped to their inbox, end to end on a real server with JWT auth: tenants confined
 * to their inboxes may use the same ids, cannot squat each other's, and learn nothing about ids
 * in inboxes they cannot read; `parent` and `children` resolve among the events the caller sees.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tserver, type TServer } from '../tserver.js';
import { bearer, hs256, JWT_CONFIG } from './tokens.js';

let s: TServer;
let admin: Record<string, string>;
let alice: Record<string, string>;
let bob: Record<string, string>;
beforeAll(async () => {
  s = await tserver(JWT_CONFIG);
  admin = bearer(await hs256({ sub: 'root', scope: 'events:admin' }));
  const tenant = async (name: string) =>
    bearer(await hs256({ sub: name, scope: 'events:read events:publish', inboxes: [name] }));
  alice = await tenant('alice');
  bob = await tenant('bob');
});
afterAll(() => s.stop());

const PUBLISH =
  'mutation($i: PublishEventInput!) { publishEvent(input: $i) { id inbox message cursor } }';

interface Published {
  publishEvent: { id: string; inbox: string; message: string | null; cursor: string } | null;
}

/** Publishes `input` as `who`; the whole GraphQL answer. */
const publish = (who: Record<string, string>, input: Record<string, unknown>) =>
  s.gql<Published>(PUBLISH, { i: { type: 'order.placed', ...input } }, who);

describe('event ids scoped to their inbox', () => {
  it('should let bob publish order-1002 in his inbox after alice did, each keeping their own', async () => {
    const mine = await publish(alice, { id: 'order-1002', inbox: 'alice', message: 'alice' });
    expect(mine.errors).toBeUndefined();
    const his = await publish(bob, { id: 'order-1002', inbox: 'bob', message: 'bob' });
    expect(his.errors).toBeUndefined();
    expect(his.data?.publishEvent).toMatchObject({ id: 'order-1002', inbox: 'bob' });
    expect(his.data?.publishEvent?.cursor).not.toBe(mine.data?.publishEvent?.cursor);
    // Idempotent in his inbox, exactly as before: the same event again, or CONFLICT for other
    // content, which says nothing of alice.
    const retry = await publish(bob, { id: 'order-1002', inbox: 'bob', message: 'bob' });
    expect(retry.data).toEqual(his.data);
    const changed = await publish(bob, { id: 'order-1002', inbox: 'bob', message: 'changed' });
    expect(changed.errors?.[0]?.extensions).toMatchObject({ code: 'CONFLICT', inbox: 'bob' });
    expect(changed.errors?.[0]?.message).not.toMatch(/alice/);

    const read = (who: Record<string, string>) =>
      s.gql<{ event: { inbox: string; message: string } | null }>(
        '{ event(id: "order-1002") { inbox message } }',
        {},
        who,
      );
    expect((await read(alice)).data?.event).toEqual({ inbox: 'alice', message: 'alice' });
    expect((await read(bob)).data?.event).toEqual({ inbox: 'bob', message: 'bob' });
  });

  it("should answer alice's probes of ids in bob's inbox exactly as for ids that exist nowhere", async () => {
    const bobs = `secret-${randomUUID()}`;
    const stored = await publish(bob, { id: bobs, inbox: 'bob', message: 'private' });
    expect(stored.errors).toBeUndefined();

    /** Every answer alice can get about `id`, with the id itself blanked out. */
    async function probe(id: string): Promise<string> {
      const answers = [
        await s.gql(`{ event(id: "${id}") { id inbox } }`, {}, alice),
        await s.gql(`{ event(id: "${id}", inbox: "bob") { id } }`, {}, alice),
        await s.gql(`{ events(filter: { parentId: "${id}" }) { nodes { id } } }`, {}, alice),
        await publish(alice, { id, inbox: 'bob', message: 'probe' }),
        // Her own publish of the id: created (never a CONFLICT), then idempotent, then a
        // CONFLICT about her own event only.
        await publish(alice, { id, inbox: 'alice', message: 'probe' }),
        await publish(alice, { id, inbox: 'alice', message: 'probe' }),
        await publish(alice, { id, inbox: 'alice', message: 'other' }),
        await s.gql(`{ event(id: "${id}") { inbox message children { id } } }`, {}, alice),
      ];
      return JSON.stringify(answers)
        .replaceAll(id, '<id>')
        .replace(/"cursor":"\w+"/g, '"cursor":"<cursor>"');
    }
    const existing = await probe(bobs);
    const missing = await probe(`secret-${randomUUID()}`);
    expect(existing).toEqual(missing);
    expect(existing).not.toMatch(/private/);
    expect(existing).toMatch(/"code":"CONFLICT"/);
    // Bob's event is untouched.
    const his = await s.gql<{ event: { message: string } }>(
      `{ event(id: "${bobs}") { message } }`,
      {},
      bob,
    );
    expect(his.data?.event).toEqual({ message: 'private' });
  });

  it('should resolve parent and children among the events the caller sees, in the same inbox first', async () => {
    const job = `job-${randomUUID()}`;
    for (const [who, inbox] of [
      [alice, 'alice'],
      [bob, 'bob'],
    ] as const) {
      expect((await publish(who, { id: job, inbox, message: inbox })).errors).toBeUndefined();
      const step = { id: `${inbox}-step-${job}`, inbox, parentId: job };
      expect((await publish(who, step)).errors).toBeUndefined();
    }
    // A child in a third inbox: its parent is the oldest namesake the caller can see.
    const cross = { id: `global-step-${job}`, inbox: 'global', parentId: job };
    expect((await publish(admin, cross)).errors).toBeUndefined();

    const tree = (who: Record<string, string>, args: string) =>
      s.gql<{ event: { inbox: string; children: { id: string; parent: { inbox: string } }[] } }>(
        `{ event(${args}) { inbox children { id parent { inbox } } } }`,
        {},
        who,
      );
    // Each tenant sees its own job and its own step only.
    for (const [who, inbox] of [
      [alice, 'alice'],
      [bob, 'bob'],
    ] as const) {
      expect((await tree(who, `id: "${job}"`)).data?.event).toEqual({
        inbox,
        children: [{ id: `${inbox}-step-${job}`, parent: { inbox } }],
      });
    }
    // An admin sees both jobs: the id alone gives the oldest, bob's is reached through its step.
    expect((await tree(admin, `id: "${job}"`)).data?.event).toEqual({
      inbox: 'alice',
      children: [
        { id: `alice-step-${job}`, parent: { inbox: 'alice' } },
        { id: `global-step-${job}`, parent: { inbox: 'alice' } },
      ],
    });
    const bobsJob = await s.gql<{ event: { parent: { inbox: string; children: unknown[] } } }>(
      `{ event(id: "bob-step-${job}") { parent { inbox children { id } } } }`,
      {},
      admin,
    );
    expect(bobsJob.data?.event.parent).toEqual({
      inbox: 'bob',
      children: [{ id: `bob-step-${job}` }],
    });
  });
});
