import { hash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FIELD_LIST } from '../../src/events/fields.js';
import type { NewEvent } from '../../src/events/types.js';
import {
  canonicalJson,
  validateEventInput,
  type PublishEventInput,
} from '../../src/events/validate.js';
import { random } from '../trandom.js';

/**
 * The same input behind a prototype of its own: the checks without zod take plain objects only,
 * so this copy goes through the schema, and serves as the reference.
 */
function throughSchema(input: unknown): PublishEventInput {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return input as PublishEventInput;
  }
  return Object.assign(Object.create({}) as object, input) as PublishEventInput;
}

type Outcome = { ok: NewEvent } | { error: string; field: unknown };

function outcome(input: PublishEventInput): Outcome {
  try {
    return { ok: validateEventInput(input, { maxBodyBytes: 4096 }, 1_000) };
  } catch (err) {
    const e = err as Error & { details?: Record<string, unknown> };
    return { error: e.message, field: e.details?.field };
  }
}

/** Inputs near every rule, valid and not. */
const EDGE_CASES: unknown[] = [
  { type: 'a' },
  { type: 'a', id: 'x', inbox: 'ops', parentId: 'p:1' },
  { type: 'a'.repeat(128) },
  { type: 'a'.repeat(129) },
  { type: '' },
  { type: 'two words' },
  { type: 7 },
  {},
  { type: null },
  { type: 'a', id: '' },
  { type: 'a', id: null, inbox: undefined, clientId: null },
  { type: 'a', inbox: 'a/b' },
  { type: 'a', parentId: 'é' },
  { type: 'a', clientId: '' },
  { type: 'a', clientId: 'c'.repeat(256) },
  { type: 'a', clientId: 'c'.repeat(257) },
  { type: 'a', category: 'tab\tok' },
  { type: 'a', category: 'bell\u0007' },
  { type: 'a', action: 'del\u007f' },
  { type: 'a', actor: 5 },
  { type: 'a', source: 'svc', correlationId: 'c-1' },
  { type: 'a', message: '' },
  { type: 'a', message: 'm'.repeat(65_536) },
  { type: 'a', message: 'm'.repeat(65_537) },
  { type: 'a', message: 'line\r\nbreak' },
  { type: 'a', message: '\u0000' },
  { type: 'a', severity: 'ERROR' },
  { type: 'a', severity: 'error' },
  { type: 'a', severity: 3 },
  { type: 'a', resource: { type: 'vm', id: '1' } },
  { type: 'a', resource: Object.assign(Object.create(null) as object, { id: '1', type: 'vm' }) },
  { type: 'a', resource: { type: 'vm' } },
  { type: 'a', resource: { type: 'vm', id: '' } },
  { type: 'a', resource: { type: 'vm', id: '1', extra: 1 } },
  { type: 'a', resource: { type: 'vm', id: '1', extra: undefined } },
  { type: 'a', resource: 'vm:1' },
  { type: 'a', resource: ['vm', '1'] },
  { type: 'a', timestamp: new Date(5) },
  { type: 'a', timestamp: new Date(Number.NaN) },
  { type: 'a', timestamp: '2026-01-31T12:00:00Z' },
  { type: 'a', timestamp: 'yesterday' },
  { type: 'a', timestamp: '2020-02-30T00:00:00Z' },
  { type: 'a', timestamp: '2024-02-29T00:00:00Z' },
  { type: 'a', timestamp: '2026-01-01T24:00:00Z' },
  { type: 'a', timestamp: 'March 1 2020' },
  { type: 'a', timestamp: 1.5 },
  { type: 'a', timestamp: Number.NaN },
  { type: 'a', timestamp: Number.NEGATIVE_INFINITY },
  { type: 'a', timestamp: true },
  { type: 'a', body: null },
  { type: 'a', body: undefined },
  { type: 'a', body: 0 },
  { type: 'a', body: false },
  { type: 'a', body: 'text' },
  { type: 'a', body: { b: 1, a: [2, { d: 1, c: null }] } },
  { type: 'a', body: { 10: 'x', 9: 'y', a: 'z' } },
  { type: 'a', body: { when: new Date(0), gone: undefined, f: () => 1 } },
  { type: 'a', body: { big: 'b'.repeat(5000) } },
  { type: 'a', body: { wide: 'é'.repeat(1500) } },
  { type: 'a', body: { wide: 'é'.repeat(2100) } },
  { type: 'a', colour: 'red' },
  { type: 'a', colour: undefined },
  { type: 'a', colour: null },
  Object.assign(Object.create(null) as object, { type: 'a', message: 'no prototype' }),
  ['type'],
  'a',
  null,
];

/** Strips what is random when the publisher leaves it out. */
function comparable(o: Outcome): unknown {
  return 'ok' in o ? { ...o.ok, id: o.ok.id.length > 0 } : o;
}

describe('validateEventInput without zod', () => {
  it.each(EDGE_CASES.map((input, i) => [i, input]))(
    'should give what the schema gives for edge case %i',
    (_i, input) => {
      const fast = outcome(input as PublishEventInput);
      const reference = outcome(throughSchema(input));
      expect(comparable(fast)).toEqual(comparable(reference));
      if ('ok' in fast && (input as { id?: unknown }).id != null) {
        expect(fast.ok.id).toBe((input as { id: string }).id);
      }
    },
  );

  it('should give what the schema gives for random inputs', () => {
    const rnd = random(42);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)] as T;
    const strings = ['', 'a', 'ok.name', 'two words', 'tab\t', 'bell\u0007', 'x'.repeat(129), 'é'];
    const values = [...strings, null, undefined, 1, Number.NaN, true, {}, { type: 'vm', id: '1' }];
    const fields = [
      'id',
      'type',
      'inbox',
      'clientId',
      'message',
      'body',
      'severity',
      'category',
      'action',
      'resource',
      'actor',
      'source',
      'parentId',
      'correlationId',
      'timestamp',
      'other',
    ];
    for (let n = 0; n < 2000; n++) {
      const input: Record<string, unknown> = rnd() < 0.9 ? { type: pick(strings) } : {};
      const count = Math.floor(rnd() * 4);
      for (let k = 0; k < count; k++) {
        const field = pick(fields);
        input[field] = field === 'severity' && rnd() < 0.5 ? pick(['INFO', 'LOUD']) : pick(values);
      }
      const fast = outcome(input as unknown as PublishEventInput);
      const reference = outcome(throughSchema(input));
      expect(comparable(fast), JSON.stringify(input)).toEqual(comparable(reference));
    }
  });
});

describe('fingerprint', () => {
  it.each([
    [{ type: 'vm.started' }, 'DJvURiFT0R-cRdnWgUhKvXRMKo2lx9xi37jNMnqmfg0'],
    [
      { type: 'vm.started', id: 'e1', inbox: 'pdfm', timestamp: '2026-01-31T12:00:00Z' },
      'aOE3B6nUzFaEgoRIrmP4erEUpsTK7jCHPbUbpQnRiPo',
    ],
    [
      {
        type: 't',
        id: 'full',
        inbox: 'i',
        clientId: 'c',
        message: 'hello\tworld',
        body: { b: [1, { z: 1, a: 'x' }], a: null },
        severity: 'CRITICAL',
        category: 'cat',
        action: 'act',
        resource: { type: 'vm', id: '42' },
        actor: 'alice',
        source: 'src',
        parentId: 'p1',
        correlationId: 'corr',
        timestamp: 1700000000000,
      },
      'g8JpDW_kN-JgR55YXwGm5qBCG8b_itLshTRVgjOWSdc',
    ],
  ] as const)(
    'should keep the fingerprint stored events already have for %j',
    (input, fingerprint) => {
      // Computed by the first release: a change here makes stored events conflict with retries.
      expect(validateEventInput(input, undefined, 5).fingerprint).toBe(fingerprint);
    },
  );

  /** The fingerprint as first defined: SHA-256 of the canonical JSON of the content. */
  function reference(e: NewEvent, timestamp: number | null): string {
    const { id: _id, generatedId: _generated, fingerprint: _fp, ...content } = e;
    // Fields added after the first release count only when set, so old fingerprints stay valid.
    const added = FIELD_LIST.filter((f) => f.fingerprint === 'whenSet').map((f) => f.name);
    const record = content as Record<string, unknown>;
    for (const name of added) if (record[name] === null) delete record[name];
    return hash('sha256', canonicalJson({ ...content, timestamp }), 'base64url');
  }

  it.each([
    { b: 1, a: 2 },
    { a: 1, b: { d: [3, { z: 1, y: 2 }], c: null } },
    { 10: 'x', 9: 'y', a: 'z', B: 'upper' },
    { é: 1, e: 2, '': 3, 'quote"d': 4, '\u2028': 5 },
    JSON.parse('{"__proto__": {"x": 1}, "a": 1}') as unknown,
    [1, 'two', null, true, { y: 1, x: 2 }],
    { n: -0, big: 1e21, small: 5e-7, unicode: '\ud83d\ude00', lone: '\ud800' },
    'a string',
    12.5,
  ])('should equal the canonical-JSON digest for the body %j', (body) => {
    const e = validateEventInput(
      { type: 't', body, resource: { id: '1', type: 'vm' }, message: 'm', clientId: 'c' },
      undefined,
      1,
    );
    expect(e.fingerprint).toBe(reference(e, null));
    const t = validateEventInput({ type: 't', body, timestamp: 7 }, undefined, 1);
    expect(t.fingerprint).toBe(reference(t, 7));
  });
});
