/**
 * Validation of what publishers send. Everything that reaches a store went through
 * {@link validateEventInput}; a bad input raises a {@link ValidationError} naming the field and
 * the rule, and nothing is stored.
 */
import { hash } from 'node:crypto';
import { z } from 'zod';
import { ValidationError } from '../errors.js';
import { readDateTime, type DateReading } from './datetime.js';
import {
  FIELD_LIST,
  type EventFieldSpec,
  type FieldCheck,
  type PublishEventInput,
} from './fields.js';
import { SEVERITIES, type NewEvent } from './types.js';
import { uuidv7 } from './uuid.js';

export type { PublishEventInput } from './fields.js';

/** Limits applied by {@link validateEventInput}. */
export interface ValidationLimits {
  /**
   * Largest `body`, in bytes of its JSON text.
   * @default 262144 (256 KiB)
   */
  maxBodyBytes: number;
}

/** The limits used when none are given. */
export const DEFAULT_LIMITS: ValidationLimits = { maxBodyBytes: 256 * 1024 };

const NAME = /^[A-Za-z0-9_.:-]+$/;
/** Control characters other than tab, newline and carriage return. */
// eslint-disable-next-line no-control-regex -- rejecting control characters is the point
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;
const NAME_RULE = 'letters, digits and _ . : - only';
/** A name of 1–128 characters of `[A-Za-z0-9_.:-]`: types, inboxes and ids. */
const name = (what: string) =>
  z
    .string()
    .min(1, `${what} must not be empty`)
    .max(128, `${what} must be at most 128 characters`)
    .regex(NAME, `${what} may contain ${NAME_RULE}`);
/** Free text without control characters other than tab and newlines. */
const text = (what: string, max: number) =>
  z
    .string()
    .max(max, `${what} must be at most ${max} characters`)
    .refine((value) => !CONTROL.test(value), `${what} must not contain control characters`);
const label = (what: string) => text(what, 256).min(1, `${what} must not be empty when given`);

/** The schema of a value under `check`, named `what` in its messages. */
function schemaOf(check: FieldCheck, what: string): z.ZodType {
  switch (check.kind) {
    case 'name':
      return name(what);
    case 'label':
      return check.pattern
        ? label(what).regex(check.pattern, `${what} must be ${check.rule ?? check.pattern.source}`)
        : label(what);
    case 'text':
      return text(what, check.max);
    case 'severity':
      return z.enum(SEVERITIES);
    case 'parts':
      return z.strictObject(
        Object.fromEntries(check.parts.map((part) => [part, label(`${what}.${part}`)])),
      );
    case 'date':
      return z.union([z.date(), z.string(), z.number()]);
    case 'json':
      return z.unknown();
  }
}

/** A field a publisher may send, with its check. */
type InputField = EventFieldSpec & { readonly name: string; readonly check: FieldCheck };

/** The fields a publisher may send, in the table's order. */
const INPUT_FIELDS: readonly InputField[] = FIELD_LIST.filter(
  (f): f is (typeof FIELD_LIST)[number] & InputField => f.check !== null,
);

/** What a publisher may send, as the schema that words the errors. */
const inputSchema = z.strictObject(
  Object.fromEntries(
    INPUT_FIELDS.map((f) => {
      const schema = schemaOf(f.check, f.name);
      return [f.name, f.required ? schema : schema.nullish()];
    }),
  ),
);

/** JSON with object keys sorted, so equal values give equal text whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** Reads a date a publisher sent for the field `what`, as epoch milliseconds. */
function parseDate(value: Date | string | number, what: string): number {
  const reading: DateReading =
    typeof value === 'string'
      ? readDateTime(value)
      : { ok: true, ms: value instanceof Date ? value.getTime() : value };
  const ms = reading.ok ? reading.ms : Number.NaN;
  // ±8.64e15 ms is the range a JavaScript Date (and so an ISO 8601 output) can represent.
  if (!Number.isInteger(ms) || Math.abs(ms) > 8.64e15) {
    const why = reading.ok ? 'it is not a date' : reading.problem;
    throw new ValidationError(
      `[events] ${what} is not a valid date (${why}): use an existing ISO 8601 date-time with ` +
        'a time zone, e.g. 2026-01-31T12:00:00Z, or epoch milliseconds',
      { details: { field: what } },
    );
  }
  return ms;
}

/** An input the schema accepted (or the fast check found it would), by field. */
type ParsedInput = Readonly<Record<string, unknown>>;

const isName = (value: unknown): boolean =>
  typeof value === 'string' && value.length >= 1 && value.length <= 128 && NAME.test(value);
const isText = (value: unknown, max: number): boolean =>
  typeof value === 'string' && value.length <= max && !CONTROL.test(value);
const isLabel = (value: unknown): boolean =>
  typeof value === 'string' && value.length >= 1 && value.length <= 256 && !CONTROL.test(value);
const SEVERITY_SET: ReadonlySet<unknown> = new Set(SEVERITIES);

/** An object literal, or an object without prototype (as GraphQL builds its input objects). */
function isPlainObject(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Whether the schema of `check` accepts `value` (which is not null), checked without zod. */
function accepts(check: FieldCheck, value: unknown): boolean {
  switch (check.kind) {
    case 'name':
      return isName(value);
    case 'label':
      return isLabel(value) && (check.pattern?.test(value as string) ?? true);
    case 'text':
      return isText(value, check.max);
    case 'severity':
      return SEVERITY_SET.has(value);
    case 'parts': {
      if (!isPlainObject(value)) return false;
      const r = value as Record<string, unknown>;
      let count = 0;
      for (const k in r) {
        if (!check.parts.includes(k) || !isLabel(r[k])) return false;
        count++;
      }
      return count === check.parts.length;
    }
    case 'date':
      if (value instanceof Date) return !Number.isNaN(value.getTime());
      if (typeof value === 'number') return Number.isFinite(value);
      return typeof value === 'string';
    case 'json':
      return true;
  }
}

/** The fields a publisher may send, by name. */
const CHECKS: ReadonlyMap<string, InputField> = new Map(INPUT_FIELDS.map((f) => [f.name, f]));
/** How many fields a publisher must send. */
const REQUIRED_COUNT = INPUT_FIELDS.filter((f) => f.required).length;

/**
 * Whether {@link inputSchema} accepts `input` as it is, checked without zod: a plain object with
 * only known fields, each valid or absent. This is the common case, and the schema hands such an
 * input back unchanged (but for the `parts` fields, which are copied anyway), so it is used as
 * is. Anything else (an invalid or unusual input) returns false and goes through the schema,
 * which gives the error message.
 */
function isValidInput(input: unknown): boolean {
  if (!isPlainObject(input)) return false;
  const v = input as Record<string, unknown>;
  let required = 0;
  for (const key in v) {
    const field = CHECKS.get(key);
    if (field === undefined) return false;
    const value = v[key];
    if (field.required) {
      if (value == null || !accepts(field.check, value)) return false;
      required++;
    } else if (value != null && !accepts(field.check, value)) {
      return false;
    }
  }
  return required === REQUIRED_COUNT;
}

/** Parses `input` with {@link inputSchema}, turning its first issue into a ValidationError. */
function parseWithSchema(input: PublishEventInput): ParsedInput {
  const parsed = inputSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join('.') || '(input)';
    const why =
      issue?.code === 'unrecognized_keys'
        ? `unknown field(s) ${issue.keys.join(', ')}`
        : (issue?.message ?? 'invalid');
    throw new ValidationError(`[events] invalid event: ${field}: ${why}`, {
      cause: parsed.error,
      details: { field },
    });
  }
  return parsed.data;
}

/** A JSON value as it will be stored and returned, and its canonical JSON text. */
interface JsonReading {
  value: unknown;
  text: string;
}

/**
 * Reads the JSON field `what`: checks that it serialises within the size limit, and gives it back
 * as stored (Dates become strings, undefined members vanish) with its canonical text.
 */
function readJson(raw: unknown, what: string, limits: ValidationLimits): JsonReading {
  if (raw == null) return { value: null, text: 'null' };
  let json: string | undefined;
  try {
    json = JSON.stringify(raw);
  } catch (err) {
    throw new ValidationError(`[events] invalid event: ${what} must be JSON-serialisable`, {
      cause: err,
      details: { field: what },
    });
  }
  // UTF-8 takes at most 3 bytes per UTF-16 unit: most bodies need no counting.
  const size =
    json === undefined ? 0 : json.length * 3 <= limits.maxBodyBytes ? 0 : Buffer.byteLength(json);
  if (size > limits.maxBodyBytes) {
    throw new ValidationError(
      `[events] invalid event: ${what} is ${size} bytes, over the limit of ${limits.maxBodyBytes} ` +
        '(TIDINGS_MAX_EVENT_BODY_BYTES): store large payloads elsewhere and send a reference',
      { details: { field: what, limit: limits.maxBodyBytes } },
    );
  }
  if (json === undefined) return { value: null, text: 'null' };
  // Its JSON text is `json` again, which is canonical when its keys are in order.
  const value = JSON.parse(json) as unknown;
  return { value, text: hasSortedKeys(value) ? json : canonicalJson(value) };
}

/**
 * Checks and normalises a publisher's input into a {@link NewEvent}: defaults the id (UUIDv7),
 * inbox (`global`), severity (`INFO`) and timestamp (now), as the table in `fields.ts` says.
 * @throws ValidationError naming the first offending field; nothing has been stored.
 */
export function validateEventInput(
  input: PublishEventInput,
  limits: ValidationLimits = DEFAULT_LIMITS,
  now: number = Date.now(),
): NewEvent {
  const v: ParsedInput = isValidInput(input) ? (input as ParsedInput) : parseWithSchema(input);
  const event: Record<string, unknown> = {};
  /** What the fingerprint covers that is not the normalised value: JSON texts, given dates. */
  const given: Record<string, string> = {};
  for (const f of FIELD_LIST) {
    const raw = v[f.name];
    const { check, fallback } = f;
    let value: unknown = raw ?? null;
    switch (check?.kind) {
      case undefined:
        // Set by the server, below.
        value = '';
        break;
      case 'json': {
        const reading = readJson(raw, f.name, limits);
        value = reading.value;
        given[f.name] = reading.text;
        break;
      }
      case 'date': {
        value = raw == null ? null : parseDate(raw as Date | string | number, f.name);
        given[f.name] = value === null ? 'null' : JSON.stringify(value);
        if (value === null && fallback === 'now') value = now;
        break;
      }
      case 'parts':
        if (raw != null) {
          const r = raw as Record<string, string>;
          value = Object.fromEntries(check.parts.map((part) => [part, r[part]]));
        }
        break;
      default:
        if (value === null && fallback !== undefined) {
          if (fallback === 'uuid') {
            value = uuidv7();
            event.generatedId = true;
          } else if (typeof fallback === 'object') {
            value = fallback.value;
          }
        }
    }
    event[f.name] = value;
  }
  // The fingerprint covers the normalised event, so a retry that spells a default out (or leaves
  // it out) is still the same event; the id is the key and a defaulted timestamp is not content.
  event.fingerprint = hash('sha256', contentJson(event, given), 'base64url');
  return event as unknown as NewEvent;
}

/** Whether every object in a JSON value (as `JSON.parse` gives it) has its keys in order. */
function hasSortedKeys(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return true;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!hasSortedKeys(value[i])) return false;
    return true;
  }
  const record = value as Record<string, unknown>;
  let previous: string | undefined;
  for (const key in record) {
    if (previous !== undefined && !(previous < key)) return false;
    if (!hasSortedKeys(record[key])) return false;
    previous = key;
  }
  return true;
}

/** The fields the fingerprint covers, in key order (as `canonicalJson` writes them). */
const FINGERPRINTED = FIELD_LIST.filter((f) => f.fingerprint !== 'never')
  .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  .map((f) => ({ ...f, key: `${JSON.stringify(f.name)}:` }));

/**
 * `canonicalJson` of the event's content (the fields the table fingerprints, JSON values and
 * `given` dates as `given` holds them), written field by field in key order: the text fingerprints
 * have always been computed from, so stored fingerprints stay valid.
 */
function contentJson(e: Record<string, unknown>, given: Record<string, string>): string {
  let out = '';
  for (const f of FINGERPRINTED) {
    const value = e[f.name];
    if (f.fingerprint === 'whenSet' && value === null) continue;
    const text =
      f.check?.kind === 'json' || f.fingerprint === 'given'
        ? (given[f.name] as string)
        : canonicalJson(value);
    out += `${out === '' ? '{' : ','}${f.key}${text}`;
  }
  return out === '' ? '{}' : `${out}}`;
}
