import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tserver, tsubscribe, type TServer } from '../tserver.js';

let s: TServer;
beforeAll(async () => {
  s = await tserver();
});
afterAll(() => s.stop());

describe.each([false, true])('graphql-sse client, singleConnection=%s', (singleConnection) => {
  it('should receive events published after subscribing', async () => {
    const sub = tsubscribe<{ eventStream: { type: string } }>(
      s.client({ singleConnection }),
      'subscription { eventStream(inboxes: ["smoke"]) { type cursor } }',
    );
    await new Promise((r) => setTimeout(r, 300));
    await s.gql('mutation { publishEvent(input: { type: "one", inbox: "smoke" }) { id } }');
    const results = await sub.next(1);
    expect(results[0]?.data?.eventStream.type).toBe('one');
    sub.unsubscribe();
  });
});
