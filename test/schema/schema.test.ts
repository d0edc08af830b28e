import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { printTidingsSchema } from '../../src/schema/index.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

describe('committed schema', () => {
  it('should match schema.graphql (run "npm run schema" after changing the schema)', () => {
    expect(readFileSync(`${root}schema.graphql`, 'utf8')).toBe(printTidingsSchema());
  });

  it('should name every contract field of DESIGN.md', () => {
    const sdl = printTidingsSchema();
    for (const field of [
      'publishEvent(input: PublishEventInput!): Event!',
      'publishEvents(inputs: [PublishEventInput!]!): [Event!]!',
      'event(id: ID!): Event',
      'eventStream(after: String, clientId: String, filter: EventFilter, inboxes: [String!]): Event!',
    ]) {
      expect(sdl).toContain(field);
    }
    expect(sdl).toMatch(
      /events\(after: String, before: String, filter: EventFilter, first: Int, last: Int, order: EventOrder! = NEWEST_FIRST\): EventConnection!/,
    );
  });
});
