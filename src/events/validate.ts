/**
 * Validation of what publishers send. Everything that reaches a store went through
 * {@link validateEventInput}; a bad input raises a {@link ValidationError} naming the field and
 * the rule, and nothing is stored.
 */
import { hash } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import { z } from 'zod';
import { ValidationError } from '../errors.js';
import {
  GLOBAL_INBOX,
  SEVERITIES,
  type NewEvent,
  type ResourceRef,
  type Severity,
} from './types.js';

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
  /** When it happened; a `Date`, an ISO 8601 string or epoch milliseconds. Defaults to now. */
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
  const ms =
    value instanceof Date ? value.getTime() : typeof value === 'number' ? value : Date.parse(value);
  // ±8.64e15 ms is the range a JavaScript Date (and so an ISO 8601 output) can represent.
  if (!Number.isInteger(ms) || Math.abs(ms) > 8.64e15) {
    throw new ValidationError(
      '[events] timestamp is not a valid date: use ISO 8601, e.g. 2026-01-31T12:00:00Z',
      {
        details: { field: 'timestamp' },
      },
    );
  }
  return ms;
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
  const v = parsed.data;
  let body: unknown = null;
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
    const size = json === undefined ? 0 : Buffer.byteLength(json);
    if (size > limits.maxBodyBytes) {
      throw new ValidationError(
        `[events] invalid event: body is ${size} bytes, over the limit of ${limits.maxBodyBytes} ` +
          '(TIDINGS_MAX_EVENT_BODY_BYTES): store large payloads elsewhere and send a reference',
        { details: { field: 'body', limit: limits.maxBodyBytes } },
      );
    }
    // The body as it will be stored and returned: Dates become strings, undefined members vanish.
    body = json === undefined ? null : (JSON.parse(json) as unknown);
  }
  const timestamp = v.timestamp == null ? null : parseTimestamp(v.timestamp);
  const event: NewEvent = {
    id: v.id ?? uuidv7(),
    type: v.type,
    inbox: v.inbox ?? GLOBAL_INBOX,
    clientId: v.clientId ?? null,
    timestamp: timestamp ?? now,
    message: v.message ?? null,
    body,
    severity: v.severity ?? 'INFO',
    category: v.category ?? null,
    action: v.action ?? null,
    resource: v.resource ? { type: v.resource.type, id: v.resource.id } : null,
    actor: v.actor ?? null,
    source: v.source ?? null,
    parentId: v.parentId ?? null,
    correlationId: v.correlationId ?? null,
    fingerprint: '',
  };
  // The fingerprint covers the normalised event, so a retry that spells a default out (or leaves
  // it out) is still the same event; the id is the key and a defaulted timestamp is not content.
  const { id: _id, fingerprint: _fp, ...content } = event;
  event.fingerprint = hash('sha256', contentJson({ ...content, timestamp }), 'base64url');
  return event;
}

/** What the fingerprint covers: the event without its id, with the timestamp as given. */
type FingerprintContent = Omit<NewEvent, 'id' | 'fingerprint' | 'timestamp'> & {
  timestamp: number | null;
};

/** The keys of {@link FingerprintContent} (all of them: the compiler checks). */
const CONTENT_KEY_SET = {
  type: true,
  inbox: true,
  clientId: true,
  timestamp: true,
  message: true,
  body: true,
  severity: true,
  category: true,
  action: true,
  resource: true,
  actor: true,
  source: true,
  parentId: true,
  correlationId: true,
} satisfies Record<keyof FingerprintContent, true>;
/** Those keys in the order {@link canonicalJson} sorts them. */
const CONTENT_KEYS = Object.keys(CONTENT_KEY_SET).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
const CONTENT_PREFIXES = CONTENT_KEYS.map((k, i) => `${i ? ',' : '{'}${JSON.stringify(k)}:`);

/**
 * `canonicalJson(content)`, without sorting the keys it always has: the text fingerprints have
 * always been computed from, so stored fingerprints stay valid.
 */
function contentJson(content: FingerprintContent): string {
  const values = content as unknown as Record<string, unknown>;
  let out = '';
  for (let i = 0; i < CONTENT_KEYS.length; i++) {
    const value = values[CONTENT_KEYS[i] as string];
    if (value === undefined) return canonicalJson(content);
    out += `${CONTENT_PREFIXES[i] as string}${value !== null && typeof value === 'object' ? canonicalJson(value) : (JSON.stringify(value) ?? 'null')}`;
  }
  return `${out}}`;
}
