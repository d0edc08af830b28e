import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  getNamedType,
  isInputObjectType,
  isNonNullType,
  isObjectType,
  type GraphQLField,
  type GraphQLInputField,
} from 'graphql';
import { describe, expect, it } from 'vitest';
import { FIELD_LIST, PUBLISH_FIELDS } from '../../src/events/fields.js';
import { buildSchema, printTidingsSchema } from '../../src/schema/index.js';

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

describe('event fields in the schema', () => {
  const schema = buildSchema();
  const eventType = schema.getType('Event');
  const inputType = schema.getType('PublishEventInput');
  if (!isObjectType(eventType) || !isInputObjectType(inputType)) {
    throw new Error('the schema lacks Event or PublishEventInput', { cause: 'see src/schema/' });
  }
  const outputs: Record<string, GraphQLField<unknown, unknown>> = eventType.getFields();
  const inputs: Record<string, GraphQLInputField> = inputType.getFields();

  it('should take PublishEventInput from the table: the fields a publisher sends, required as declared', () => {
    expect(Object.keys(inputs).sort()).toEqual([...PUBLISH_FIELDS].sort());
    for (const f of FIELD_LIST) {
      if (f.check === null) continue;
      const input = inputs[f.name];
      expect(isNonNullType(input?.type), f.name).toBe(f.required === true);
      expect(input?.description ?? undefined, f.name).toBe(f.graphql?.inputDescription);
      if (f.graphql?.type) expect(getNamedType(input?.type)?.name, f.name).toBe(f.graphql.type);
    }
  });

  it('should take the fields of Event a publisher sends from the table, nullable when the stored value can be null', () => {
    for (const f of FIELD_LIST) {
      const output = outputs[f.name];
      if (f.check === null) {
        expect(output, `${f.name} is set by the server and not part of the contract`).toBe(
          undefined,
        );
        continue;
      }
      const canBeNull = f.required !== true && f.fallback === undefined;
      expect(isNonNullType(output?.type), f.name).toBe(!canBeNull);
      expect(output?.description ?? undefined, f.name).toBe(f.graphql?.description);
      // The value has the same GraphQL type going in and coming out, but for an object of parts.
      const inputName = getNamedType(inputs[f.name]?.type)?.name;
      if (f.check.kind !== 'parts')
        expect(getNamedType(output?.type)?.name, f.name).toBe(inputName);
    }
  });
});
