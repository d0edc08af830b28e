/**
 * Values for the table of event fields (`src/events/fields.ts`), so that tests cover every field
 * it declares, a new one included, without naming them.
 */
import { FIELD_LIST, type FieldCheck } from '../src/events/fields.js';

/**
 * A value for a field that no default gives, from its check in the table; a date is `date` minus
 * one day, in epoch milliseconds.
 */
export function tunusual(name: string, check: FieldCheck, date: number): unknown {
  switch (check.kind) {
    case 'name':
      return `n.${name}`;
    case 'label':
      return check.example ?? `label of ${name}`;
    case 'text':
      return `text of ${name}\twith a tab`;
    case 'severity':
      return 'CRITICAL';
    case 'parts':
      return Object.fromEntries(check.parts.map((part) => [part, `${name} ${part}`]));
    case 'date':
      return date - 86_400_000;
    case 'json':
      return { field: name, list: [1, 'two', null], nested: { b: true } };
  }
}

/** A publish input with every field a publisher may send set to its {@link tunusual} value. */
export function teveryField(date: number): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  for (const f of FIELD_LIST) if (f.check) input[f.name] = tunusual(f.name, f.check, date);
  return input;
}
