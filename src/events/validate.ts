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
  GLOBAL_INBOX,
  SEVERITIES,
  type NewEvent,
  type ResourceRef,
  type Severity,
} from './types.js';
import { uuidv7 } from './uuid.js';

/** What a publisher sends: the `PublishEventInput` of the GraphQL contract, or `emit`'s argument. */
export interface PublishEventInput {
  id?: string | null;
  type: string;
  inbox?: string | null;
  clientId?: string | null;
  message?: string | null;
  body?: unknown;
  severity?: Severity | null;
  category?: string | null;
  action?: string | null;
  resource?: ResourceRef | null;
  actor?: string | null;
  source?: string | null;
  parentId?: string | null;
  correlationId?: string | null;
  /**
   * When it happened: a `Date`, an ISO 8601 date-time with a time zone (a date that exists) or
   * epoch milliseconds. Defaults to now.
   */
  timestamp?: Date | string | number | null;
}

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

const inputSchema = z.strictObject({
  id: name('id').nullish(),
  type: name('type'),
  inbox: name('inbox').nullish(),
  clientId: label('clientId').nullish(),
  message: text('message', 65_536).nullish(),
  body: z.unknown().optional(),
  severity: z.enum(SEVERITIES).nullish(),
  category: label('category').nullish(),
  action: label('action').nullish(),
  resource: z.strictObject({ type: label('resource.type'), id: label('resource.id') }).nullish(),
  actor: label('actor').nullish(),
  source: label('source').nullish(),
  parentId: name('parentId').nullish(),
  correlationId: label('correlationId').nullish(),
  timestamp: z.union([z.date(), z.string(), z.number()]).nullish(),
});

/** JSON with object keys sorted, so equal values give equal text whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

function parseTimestamp(value: Date | string | number): number {
  const reading: DateReading =
    typeof value === 'string'
      ? readDateTime(value)
      : { ok: true, ms: value instanceof Date ? value.getTime() : value };
  const ms = reading.ok ? reading.ms : Number.NaN;
  // ±8.64e15 ms is the range a JavaScript Date (and so an ISO 8601 output) can represent.
  if (!Number.isInteger(ms) || Math.abs(ms) > 8.64e15) {
    const why = reading.ok ? 'it is not a date' : reading.problem;
    throw new ValidationError(
      `[events] timestamp is not a valid date (${why}): use an existing ISO 8601 date-time with ` +
        'a time zone, e.g. 2026-01-31T12:00:00Z, or epoch milliseconds',
      { details: { field: 'timestamp' } },
    );
  }
  return ms;
}

/** What {@link inputSchema} accepts, as it hands it back. */
type ParsedInput = z.output<typeof inputSchema>;

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

/**
 * Whether {@link inputSchema} accepts `input` as it is, checked without zod: a plain object with
 * only known fields, each valid or absent. This is the common case, and the schema hands such an
 * input back unchanged (but for `resource`, which is copied anyway), so it is used as is. Anything
 * else (an invalid or unusual input) returns false and goes through the schema, which gives the
 * error message.
 */
function isValidInput(input: unknown): boolean {
  if (!isPlainObject(input)) return false;
  const v = input as Record<string, unknown>;
  let hasType = false;
  for (const key in v) {
    const value = v[key];
    switch (key) {
      case 'type':
        if (!isName(value)) return false;
        hasType = true;
        continue;
      case 'body':
        continue;
    }
    if (value == null) {
      if (!FIELD_SET.has(key)) return false;
      continue;
    }
    switch (key) {
      case 'id':
      case 'inbox':
      case 'parentId':
        if (!isName(value)) return false;
        break;
      case 'clientId':
      case 'category':
      case 'action':
      case 'actor':
      case 'source':
      case 'correlationId':
        if (!isLabel(value)) return false;
        break;
      case 'message':
        if (!isText(value, 65_536)) return false;
        break;
      case 'severity':
        if (!SEVERITY_SET.has(value)) return false;
        break;
      case 'resource': {
        if (!isPlainObject(value)) return false;
        const r = value as Record<string, unknown>;
        let count = 0;
        for (const k in r) {
          if (k !== 'type' && k !== 'id') return false;
          count++;
        }
        if (count !== 2 || !isLabel(r.type) || !isLabel(r.id)) return false;
        break;
      }
      case 'timestamp':
        if (value instanceof Date) {
          if (Number.isNaN(value.getTime())) return false;
        } else if (typeof value === 'number') {
          if (!Number.isFinite(value)) return false;
        } else if (typeof value !== 'string') {
          return false;
        }
        break;
      default:
        return false;
    }
  }
  return hasType;
}

/** The fields of {@link inputSchema}. */
const FIELD_SET: ReadonlySet<string> = new Set(Object.keys(inputSchema.shape));

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

/**
 * Checks and normalises a publisher's input into a {@link NewEvent}: defaults the id (UUIDv7),
 * inbox (`global`), severity (`INFO`) and timestamp (now).
 * @throws ValidationError naming the first offending field; nothing has been stored.
 */
export function validateEventInput(
  input: PublishEventInput,
  limits: ValidationLimits = DEFAULT_LIMITS,
  now: number = Date.now(),
): NewEvent {
  const v: ParsedInput = isValidInput(input) ? (input as ParsedInput) : parseWithSchema(input);
  let body: unknown = null;
  /** The canonical JSON text of `body`, for the fingerprint. */
  let bodyText = 'null';
  if (v.body != null) {
    let json: string | undefined;
    try {
      json = JSON.stringify(v.body);
    } catch (err) {
      throw new ValidationError('[events] invalid event: body must be JSON-serialisable', {
        cause: err,
        details: { field: 'body' },
      });
    }
    // UTF-8 takes at most 3 bytes per UTF-16 unit: most bodies need no counting.
    const size =
      json === undefined ? 0 : json.length * 3 <= limits.maxBodyBytes ? 0 : Buffer.byteLength(json);
    if (size > limits.maxBodyBytes) {
      throw new ValidationError(
        `[events] invalid event: body is ${size} bytes, over the limit of ${limits.maxBodyBytes} ` +
          '(TIDINGS_MAX_EVENT_BODY_BYTES): store large payloads elsewhere and send a reference',
        { details: { field: 'body', limit: limits.maxBodyBytes } },
      );
    }
    if (json !== undefined) {
      // The body as it will be stored and returned: Dates become strings, undefined members
      // vanish. Its JSON text is `json` again, which is canonical when its keys are in order.
      body = JSON.parse(json) as unknown;
      bodyText = hasSortedKeys(body) ? json : canonicalJson(body);
    }
  }
  const timestamp = v.timestamp == null ? null : parseTimestamp(v.timestamp);
  const resource = v.resource ? { type: v.resource.type, id: v.resource.id } : null;
  const event: NewEvent = {
    id: v.id ?? uuidv7(),
    ...(v.id == null ? { generatedId: true as const } : {}),
    type: v.type,
    inbox: v.inbox ?? GLOBAL_INBOX,
    clientId: v.clientId ?? null,
    timestamp: timestamp ?? now,
    message: v.message ?? null,
    body,
    severity: v.severity ?? 'INFO',
    category: v.category ?? null,
    action: v.action ?? null,
    resource,
    actor: v.actor ?? null,
    source: v.source ?? null,
    parentId: v.parentId ?? null,
    correlationId: v.correlationId ?? null,
    fingerprint: '',
  };
  // The fingerprint covers the normalised event, so a retry that spells a default out (or leaves
  // it out) is still the same event; the id is the key and a defaulted timestamp is not content.
  event.fingerprint = hash('sha256', contentJson(event, bodyText, timestamp), 'base64url');
  return event;
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

/**
 * The fields {@link contentJson} writes: every field of a NewEvent but its id (and whether it was
 * generated) and fingerprint. A
 * field added to NewEvent fails to compile here until the fingerprint covers it.
 */
const _FINGERPRINTED = {
  action: true,
  actor: true,
  body: true,
  category: true,
  clientId: true,
  correlationId: true,
  inbox: true,
  message: true,
  parentId: true,
  resource: true,
  severity: true,
  source: true,
  timestamp: true,
  type: true,
} satisfies Record<Exclude<keyof NewEvent, 'id' | 'generatedId' | 'fingerprint'>, true>;

/** JSON text of a string or null. */
const str = (value: string | null): string => (value === null ? 'null' : JSON.stringify(value));

/**
 * `canonicalJson` of the event's content (the event without its id and fingerprint, with the
 * timestamp as given), written field by field in key order: the text fingerprints have always
 * been computed from, so stored fingerprints stay valid. `bodyText` is the canonical JSON of the
 * body.
 */
function contentJson(e: NewEvent, bodyText: string, timestamp: number | null): string {
  const resource =
    e.resource === null ? 'null' : `{"id":${str(e.resource.id)},"type":${str(e.resource.type)}}`;
  return (
    `{"action":${str(e.action)},"actor":${str(e.actor)},"body":${bodyText}` +
    `,"category":${str(e.category)},"clientId":${str(e.clientId)}` +
    `,"correlationId":${str(e.correlationId)},"inbox":${str(e.inbox)}` +
    `,"message":${str(e.message)},"parentId":${str(e.parentId)},"resource":${resource}` +
    `,"severity":${str(e.severity)},"source":${str(e.source)}` +
    `,"timestamp":${timestamp === null ? 'null' : JSON.stringify(timestamp)},"type":${str(e.type)}}`
  );
}
