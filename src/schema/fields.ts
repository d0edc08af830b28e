/**
 * The GraphQL face of the table of event fields (`src/events/fields.ts`): the types a field's
 * check kind stands for, and the fields of `Event` and `PublishEventInput` built from the table,
 * so that a new field needs no hand-written GraphQL field.
 */
import type { FieldMap, InputFieldMap } from '@pothos/core';
import {
  type EVENT_FIELDS,
  FIELD_LIST,
  type EventFieldName,
  type EventFieldSpec,
  type FieldCheck,
} from '../events/fields.js';
import { SEVERITIES, type ResourceRef, type StoredEvent } from '../events/types.js';
import { builder } from './builder.js';

/** The `Severity` enum. */
export const SeverityEnum = builder.enumType('Severity', {
  description: 'How much an event matters, lowest first.',
  values: SEVERITIES,
});

/** The `ResourceRef` object: what an event is about. */
export const ResourceRefType = builder.objectRef<ResourceRef>('ResourceRef').implement({
  description: 'A reference to the thing an event is about.',
  fields: (t) => ({
    type: t.exposeString('type', { description: 'Kind of resource, e.g. `vm`.' }),
    id: t.exposeString('id', { description: "The resource's identifier." }),
  }),
});

/** `ResourceInput`: the resource of a published event. */
export const ResourceInput = builder.inputType('ResourceInput', {
  fields: (t) => ({
    type: t.string({ required: true }),
    id: t.string({ required: true }),
  }),
});

type Fields = typeof EVENT_FIELDS;

/** The fields whose value is an object of parts: each has GraphQL types of its own. */
type PartsField = {
  [K in EventFieldName]: Fields[K]['check'] extends { kind: 'parts' } ? K : never;
}[EventFieldName];

/** The GraphQL types of a field's value, on `Event` and in `PublishEventInput`. */
interface ValueTypes {
  readonly output:
    'String' | 'ID' | 'DateTime' | 'JSON' | typeof SeverityEnum | typeof ResourceRefType;
  readonly input:
    'String' | 'ID' | 'DateTime' | 'JSON' | typeof SeverityEnum | typeof ResourceInput;
}

/** The object and input types of each `parts` field: a new one must name its own here. */
const PARTS_TYPES = {
  resource: { output: ResourceRefType, input: ResourceInput },
} as const satisfies Record<PartsField, ValueTypes>;

/** The GraphQL type of each check kind but `parts`, whose types are per field. */
const KIND_TYPES = {
  name: 'String',
  label: 'String',
  text: 'String',
  date: 'DateTime',
  json: 'JSON',
  severity: SeverityEnum,
} as const satisfies Record<Exclude<FieldCheck['kind'], 'parts'>, ValueTypes['output']>;

/** A field of the GraphQL contract: one the publisher sends (the server-set ones stay out). */
type ContractField = EventFieldSpec & { readonly name: EventFieldName; readonly check: FieldCheck };

/** The fields of the contract, in the table's order. */
const CONTRACT_FIELDS: readonly ContractField[] = FIELD_LIST.filter(
  (f): f is ContractField => f.check !== null,
);

/** The types of a field's value: its own (`ID`), its check kind's, or its parts' types. */
function valueTypes(f: ContractField): ValueTypes {
  if (f.graphql?.type) return { output: f.graphql.type, input: f.graphql.type };
  if (f.check.kind !== 'parts') {
    const type = KIND_TYPES[f.check.kind];
    return { output: type, input: type };
  }
  // A field with parts is a PartsField, and PARTS_TYPES has an entry for each.
  return PARTS_TYPES[f.name as PartsField];
}

/** The schema types of {@link builder}. */
type Types = typeof builder extends PothosSchemaTypes.SchemaBuilder<infer T> ? T : never;

/** Whether the stored value can be `null`: an optional field without a default. */
function nullable(f: ContractField): boolean {
  return f.required !== true && f.fallback === undefined;
}

/** The fields of the `Event` object the table declares. */
export function eventObjectFields(
  t: PothosSchemaTypes.ObjectFieldBuilder<Types, StoredEvent>,
): FieldMap {
  return Object.fromEntries(
    CONTRACT_FIELDS.map((f) => [
      f.name,
      t.field({
        type: valueTypes(f).output,
        nullable: nullable(f),
        description: f.graphql?.description,
        resolve: (e) => e[f.name],
      }),
    ]),
  );
}

/** The fields of `PublishEventInput`: every field a publisher may send. */
export function publishInputFields(
  t: PothosSchemaTypes.InputFieldBuilder<Types, 'InputObject'>,
): InputFieldMap {
  return Object.fromEntries(
    CONTRACT_FIELDS.map((f) => [
      f.name,
      t.field({
        type: valueTypes(f).input,
        required: f.required === true,
        description: f.graphql?.inputDescription,
      }),
    ]),
  );
}
