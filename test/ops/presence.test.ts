/**
 * Presence: an admin lists the streams open on the instance (who, which inboxes, since when, how
 * much was delivered and how much waits); anyone else is refused.
 */
import { createClient, type Client } from 'graphql-sse';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, hs256, JWT_CONFIG } from '../auth/tokens.js';
import { waitFor } from '../transport/helpers.js';
import { tserver, tsubscribe, type TServer } from '../tserver.js';

const STREAMS = '{ streams { id mode subject clientId inboxes since eventsDelivered queueBytes } }';

interface Listed {
  id: string;
  mode: 'DISTINCT' | 'SINGLE';
  subject: string | null;
  clientId: string | null;
  inboxes: string[] | null;
  since: string;
  eventsDelivered: number;
  queueBytes: number;
}

let s: TServer;
let orchestrator: Record<string, string>;
const clients: Client[] = [];
beforeAll(async () => {
  s = await tserver(JWT_CONFIG);
  orchestrator = bearer(await hs256({ sub: 'orchestrator', scope: 'events:admin events:publish' }));
});
afterAll(async () => {
  for (const c of clients) c.dispose();
  await s.stop();
});

/** A host connected with its own token and client id, following its inbox. */
async function connectHost(name: string, singleConnection: boolean) {
  const token = await hs256({ sub: name, client_id: name, scope: 'events:read' });
  const client = createClient({
    url: `${s.url}/graphql/stream`,
    headers: bearer(token),
    singleConnection,
    retryAttempts: 0,
  });
  clients.push(client);
  const before = s.app.hub.size;
  const sub = tsubscribe(
    client,
    'subscription($id: String!) { eventStream(inboxes: ["hosts"], clientId: $id) { cursor } }',
    { id: name },
  );
  await waitFor(() => s.app.hub.size > before, `${name} to connect`);
  return sub;
}

describe('streams (presence)', () => {
  it('should show an orchestrator every connected host with its client id', async () => {
    const startedAt = Date.now();
    const one = await connectHost('host-1', false);
    const two = await connectHost('host-2', true);
    await s.app.emit({ type: 'host.ping', inbox: 'hosts', clientId: 'host-2' });
    await s.app.emit({ type: 'hosts.hello', inbox: 'hosts' });
    await one.next(1);
    await two.next(2);

    const { data, errors } = await s.gql<{ streams: Listed[] }>(STREAMS, {}, orchestrator);
    expect(errors).toBeUndefined();
    const streams = data?.streams ?? [];
    expect(streams.map(({ id: _id, since: _since, ...rest }) => rest)).toEqual([
      {
        mode: 'DISTINCT',
        subject: 'host-1',
        clientId: 'host-1',
        inboxes: ['hosts'],
        eventsDelivered: 1,
        queueBytes: 0,
      },
      {
        mode: 'SINGLE',
        subject: 'host-2',
        clientId: 'host-2',
        inboxes: ['hosts'],
        eventsDelivered: 2,
        queueBytes: 0,
      },
    ]);
    for (const stream of streams) {
      expect(Date.parse(stream.since)).toBeGreaterThanOrEqual(startedAt - 1000);
      expect(stream.id).toMatch(/^[0-9a-f]{8}-[0-9a-z]+$/);
    }
    expect(new Set(streams.map((x) => x.id)).size).toBe(2);

    one.unsubscribe();
    await waitFor(() => s.app.hub.size === 1, 'host-1 to leave');
    const after = await s.gql<{ streams: Listed[] }>(STREAMS, {}, orchestrator);
    expect(after.data?.streams.map((x) => x.clientId)).toEqual(['host-2']);
  });

  it('should refuse the list to anyone without events:admin', async () => {
    const host = bearer(await hs256({ sub: 'host-3', client_id: 'host-3', scope: 'events:read' }));
    const { data, errors } = await s.gql(STREAMS, {}, host);
    expect(data).toBeNull();
    expect(errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(errors?.[0]?.message).toMatch(/events:admin/);
  });
});
