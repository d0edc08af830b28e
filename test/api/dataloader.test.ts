import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStore } from '../../src/store/index.js';
import type { EventStore } from '../../src/store/types.js';
import { tserver, type TServer } from '../tserver.js';

/** Wraps a store and counts the calls of its batch reads. */
function countingStore(inner: EventStore) {
  const calls = { getByIds: 0, getChildren: 0 };
  const store: EventStore = {
    ...inner,
    kind: inner.kind,
    getByIds: (ids, clauses) => {
      calls.getByIds++;
      return inner.getByIds(ids, clauses);
    },
    getChildren: (ids, clauses) => {
      calls.getChildren++;
      return inner.getChildren(ids, clauses);
    },
  };
  return { store, calls };
}

let s: TServer;
let calls: { getByIds: number; getChildren: number };
beforeAll(async () => {
  const counted = countingStore(await createStore('sqlite::memory:'));
  calls = counted.calls;
  s = await tserver({}, { store: counted.store });
  await s.app.publish([{ id: 'root', type: 'tree.root' }]);
  for (let c = 0; c < 5; c++) {
    await s.app.publish([
      { id: `c${c}`, type: 'tree.child', parentId: 'root' },
      ...[0, 1, 2].map((g) => ({ id: `c${c}g${g}`, type: 'tree.grandchild', parentId: `c${c}` })),
    ]);
  }
});
afterAll(() => s.stop());

describe('Event.parent and Event.children', () => {
  it('should resolve each level with one store query, whatever the number of events', async () => {
    calls.getByIds = 0;
    calls.getChildren = 0;
    const res = await s.gql<{
      events: {
        nodes: {
          id: string;
          parent: { id: string } | null;
          children: { id: string; children: { id: string }[] }[];
        }[];
      };
    }>(`{
      events(filter: { types: ["tree.child"] }, order: OLDEST_FIRST) {
        nodes { id parent { id parent { id } } children { id children { id } } }
      }
    }`);
    expect(res.errors).toBeUndefined();
    const nodes = res.data!.events.nodes;
    expect(nodes.map((n) => n.id)).toEqual(['c0', 'c1', 'c2', 'c3', 'c4']);
    expect(nodes.every((n) => n.parent?.id === 'root')).toBe(true);
    expect(nodes[2]!.children.map((c) => c.id)).toEqual(['c2g0', 'c2g1', 'c2g2']);
    // parent: one query for the 5 parents (all "root"); root has no parent, so no second query.
    // children: one query for the 5 children, one for their 15 grandchildren.
    expect(calls).toEqual({ getByIds: 1, getChildren: 2 });
  });

  it('should return null for a missing parent and an empty list for a leaf', async () => {
    await s.app.publish([{ id: 'orphan', type: 'tree.orphan', parentId: 'never-published' }]);
    const res = await s.gql<{ event: { parent: null; children: [] } }>(
      '{ event(id: "orphan") { parent { id } children { id } } }',
    );
    expect(res.data!.event).toEqual({ parent: null, children: [] });
  });
});
