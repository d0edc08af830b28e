/**
 * The one Pothos schema builder. Each domain type has its own file beside this one; `index.ts`
 * imports them all and builds the schema.
 */
import SchemaBuilder from '@pothos/core';
import type { TidingsContext } from '../context.js';

/** The builder, typed with the Tidings context and scalars. */
export const builder = new SchemaBuilder<{
  Context: TidingsContext;
  DefaultFieldNullability: false;
  Scalars: {
    /** Accepts ISO 8601 strings; outputs them with milliseconds, in UTC. */
    DateTime: { Input: Date; Output: Date | number };
    /** Any JSON value. */
    JSON: { Input: unknown; Output: unknown };
    ID: { Input: string; Output: string };
  };
}>({ defaultFieldNullability: false });
