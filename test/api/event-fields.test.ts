import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIELD_LIST } from '../../src/events/fields.js';
import { teveryField } from '../tfields.js';
import { tserver, type TServer } from '../tserver.js';

const T0 = Date.UTC(2026, 0, 1);

let s: TServer;
beforeAll(async () => {
  s = await tserver();
});
afterAll(() => s.stop());

/** The selection of every field a publisher sends, parts included. */
const SELECTION = FIELD_LIST.flatMap((f) => {
  if (f.check === null) return [];
  return f.check.kind === 'parts' ? [`${f.name} { ${f.check.parts.join(' ')} }`] : [f.name];
}).join(' ');

describe('the table of event fields over GraphQL', () => {
  it('should publish every field a publisher may send and read each back as sent', async () => {
    // GraphQL carries dates as ISO 8601 strings, and returns them so.
    const input = Object.fromEntries(
      Object.entries(teveryField(T0)).map(([name, value]) => [
        name,
        FIELD_LIST.find((f) => f.name === name)?.check?.kind === 'date'
          ? new Date(value as number).toISOString()
          : value,
      ]),
    );
    const published = await s.gql<{ publishEvent: Record<string, unknown> }>(
      `mutation ($input: PublishEventInput!) { publishEvent(input: $input) { ${SELECTION} } }`,
      { input },
    );
    expect(published.errors).toBeUndefined();
    expect(published.data?.publishEvent).toEqual(input);

    const read = await s.gql<{ events: { nodes: Record<string, unknown>[] } }>(
      `query { events(first: 10) { nodes { ${SELECTION} } } }`,
    );
    expect(read.errors).toBeUndefined();
    expect(read.data?.events.nodes).toEqual([input]);
  });
});
