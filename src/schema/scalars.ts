import { GraphQLError, Kind, valueFromASTUntyped, type ValueNode } from 'graphql';
import { readDateTime } from '../events/datetime.js';
import { builder } from './builder.js';

function parseDateTime(value: unknown): Date {
  const reading =
    typeof value === 'string'
      ? readDateTime(value)
      : { ok: false as const, problem: 'it is not a string' };
  if (!reading.ok) {
    throw new GraphQLError(
      `DateTime must be an existing ISO 8601 date-time with a time zone, e.g. ` +
        `2026-01-31T12:00:00Z; got ${JSON.stringify(value)}: ${reading.problem}`,
      { extensions: { code: 'BAD_USER_INPUT' } },
    );
  }
  return new Date(reading.ms);
}

builder.scalarType('DateTime', {
  description: 'An ISO 8601 date-time with time zone; output in UTC with milliseconds.',
  serialize: (value) =>
    new Date(value instanceof Date ? value.getTime() : Number(value)).toISOString(),
  parseValue: parseDateTime,
  parseLiteral: (ast) => parseDateTime(ast.kind === Kind.STRING ? ast.value : null),
});

builder.scalarType('JSON', {
  description: 'Any JSON value.',
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: (ast: ValueNode, variables) => valueFromASTUntyped(ast, variables ?? undefined),
});
