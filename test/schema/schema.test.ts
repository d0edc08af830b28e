import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { generate, loadCodegenConfig } from '@graphql-codegen/cli';
import { describe, expect, it } from 'vitest';
import { printTidingsSchema } from '../../src/schema/index.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

describe('committed schema and generated client', () => {
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

  it('should match src/client/generated (run "npm run codegen" after changing operations)', async () => {
    const { config } = await loadCodegenConfig({ configFilePath: `${root}codegen.yml` });
    const outputs = (await generate({ ...config, cwd: root, silent: true }, false)) as {
      filename: string;
      content: string;
    }[];
    expect(outputs.length).toBeGreaterThan(0);
    for (const output of outputs) {
      expect(readFileSync(`${root}${output.filename}`, 'utf8'), output.filename).toBe(
        output.content,
      );
    }
  });
});
