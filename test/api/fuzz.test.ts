/**
 * Hostile input, generated: well over a thousand malformed, oversized, deeply nested, mistyped or
 * unauthenticated requests against a real server, each of which must be answered with a 4xx (or a
 * 200 carrying GraphQL errors) and a well-formed body, storing nothing and leaving the server
 * healthy. The corpus comes from a seeded generator: `TIDINGS_FUZZ_SEED=<n>` replays a run.
 *
 * The same corpus runs twice: against a server without auth, and against one with
 * `TIDINGS_AUTH=jwt`, where every request carries an admin token except those whose credentials
 * are the point (garbage, `alg: none`, expired, wrongly signed), which must get 401.
 */
import { writeFileSync } from 'node:fs';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken, type TokenRequest } from '../../src/cli/token.js';
import { DEFAULT_CONFIG } from '../../src/config.js';
import { random } from '../trandom.js';
import { tserver, tsubscribe, type TServer } from '../tserver.js';

const SEED = Number(process.env.TIDINGS_FUZZ_SEED ?? 20260214);
/** Requests generated per run (reservations made by some of them come on top). */
const CASES = 1_200;
/** Requests in flight at once. */
const CONCURRENCY = 12;
/** How long a stream that may legitimately stay open is read before the client closes it, ms. */
const STAY_OPEN_MS = 100;
/** How long any response may take to arrive, and a stream that must end to end, ms. */
const DEADLINE_MS = 10_000;
const SECRET = 'fuzz-secret-0123456789-abcdefghijklmnop';
const { maxEventBodyBytes, maxBatch, maxRequestBytes } = DEFAULT_CONFIG;
/** Longest path and query string generated, so that headers stay within Node's 16 KiB. */
const MAX_URL = 8_000;
const SEVERITIES = ['DEBUG', 'INFO', 'SUCCESS', 'WARNING', 'ERROR', 'CRITICAL'] as const;
/** What clients see of an unexpected server-side error (src/transport/errors.ts). */
const MASKED = /^Unexpected error/;

/** One generated request. */
interface FuzzCase {
  /** What it tries, for failure reports. */
  kind: string;
  method: string;
  /** Path and query string; `{{token}}` stands for a fresh single-connection reservation. */
  path: string;
  headers: Record<string, string>;
  body?: string | Uint8Array<ArrayBuffer>;
  /** Its credentials are the point: sent as they are, refused with 401 under `TIDINGS_AUTH=jwt`. */
  badAuth?: boolean;
  /** The request may be valid: an answer with `data` and no `errors` is fine. */
  mayPass?: boolean;
  /** A stream that may legitimately stay open (a valid subscription): closed after a moment. */
  mayStayOpen?: boolean;
  /** Needs a single-connection reservation made just before (`{{token}}`). */
  reserve?: boolean;
}

type Rng = () => number;

const int = (r: Rng, min: number, max: number) => min + Math.floor(r() * (max - min + 1));
const pick = <T>(r: Rng, items: readonly T[]): T => items[Math.floor(r() * items.length)] as T;
const chance = (r: Rng, p: number) => r() < p;
const b64url = (text: string) => Buffer.from(text).toString('base64url');

const PRINTABLE = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('');
const NASTY: readonly string[] = [
  ...['\u0000', '\u0001', '\u001b[31m', '\ud800', '\udfff', '\u2028', '\u202e', '\ufeff'],
  ...['💥', 'é', '"', '\\', '\n', '\r\n', '\t', '${x}', '%00', '<script>'],
  "'; DROP TABLE events; --",
];

/** `n` random printable ASCII characters (safe in a header value when trimmed). */
function printable(r: Rng, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += PRINTABLE[Math.floor(r() * PRINTABLE.length)];
  return s;
}

/** A random string mixing printable text and characters that break naive handling. */
function junk(r: Rng, n: number): string {
  let s = '';
  while (s.length < n) s += chance(r, 0.2) ? pick(r, NASTY) : printable(r, int(r, 1, 8));
  return s;
}

/** A GraphQL literal for `value`; strings under an enum-typed key become bare names when they can. */
function literal(value: unknown, asEnum = false): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') {
    return asEnum && /^[A-Za-z_]\w*$/.test(value) ? value : JSON.stringify(value);
  }
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '0';
  if (typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `[${value.map((v) => literal(v)).join(', ')}]`;
  const fields = Object.entries(value as Record<string, unknown>).map(
    ([k, v]) => `${k}: ${literal(v, k === 'severity' || k === 'severities')}`,
  );
  return `{${fields.join(', ')}}`;
}

// ---------------------------------------------------------------------------------------------
// Event inputs that are invalid for sure, mixed with fields that may be valid.

type Input = Record<string, unknown>;

/** A random input whose fields are valid, or odd but possibly accepted. */
function validishInput(r: Rng): Input {
  const input: Input = { type: pick(r, ['fuzz.ok', 'vm.started', 'a', 'x:y-z_1.2']) };
  const optional: [string, () => unknown][] = [
    ['inbox', () => pick(r, ['global', 'pdfm', 'alerts', 'fuzz'])],
    ['message', () => printable(r, int(r, 0, 200))],
    ['severity', () => pick(r, SEVERITIES)],
    ['category', () => 'connection'],
    ['action', () => 'start'],
    ['actor', () => 'user-1'],
    ['source', () => printable(r, int(r, 1, 40))],
    ['correlationId', () => 'corr-1'],
    ['clientId', () => 'host-7'],
    ['resource', () => ({ type: 'vm', id: `vm-${int(r, 1, 99)}` })],
    // Any JSON is a valid body, objects or not.
    ['body', () => pick(r, [{ a: 1 }, 5, 'text', [1, 2], true, null, { deep: [{ x: 'y' }] }])],
    [
      'timestamp',
      () => pick(r, ['2026-01-31T12:00:00Z', '0000-01-01T00:00:00Z', '9999-12-31T23:59:59.999Z']),
    ],
    ['parentId', () => `parent-${int(r, 1, 9)}`],
    ['id', () => `fuzz-${int(r, 1, 1_000_000)}`],
  ];
  for (const [key, value] of optional) if (chance(r, 0.3)) input[key] = value();
  return input;
}

/** Ways to make an input invalid for certain; each names what it breaks. */
const BREAKERS: readonly [string, (r: Rng, input: Input) => void][] = [
  ['type of a wrong type', (r, i) => (i.type = pick(r, [5, true, 1.5, ['a'], { a: 1 }]))],
  ['an empty type', (_r, i) => (i.type = '')],
  ['no type', (_r, i) => delete i.type],
  ['a type over 128 characters', (r, i) => (i.type = 't'.repeat(int(r, 129, 5000)))],
  ['a type out of its alphabet', (r, i) => (i.type = pick(r, ['two words', 'ünï', 'a/b', '*']))],
  [
    'a body over TIDINGS_MAX_EVENT_BODY_BYTES',
    (r, i) => (i.body = { blob: 'b'.repeat(maxEventBodyBytes + int(r, 1, 4096)) }),
  ],
  [
    'an invalid severity',
    (r, i) => (i.severity = pick(r, ['LOUD', 'info', 'Info', '', 'DEBUG ', 5, true, ['INFO']])),
  ],
  [
    'a timestamp out of range or malformed',
    (r, i) =>
      (i.timestamp = pick(r, [
        '+275760-09-13T00:00:00.001Z',
        '-271821-04-20T00:00:00.000Z',
        '10000-01-01T00:00:00Z',
        '2026-13-01T00:00:00Z',
        '2026-01-01T25:00:00Z',
        '2026-01-32T00:00:00Z',
        '2026-01-01',
        '2026-01-01T00:00:00',
        'yesterday',
        '',
        8.64e15 + 1,
        -1e300,
        1e21,
        true,
        { at: 'now' },
      ])),
  ],
  ['an unknown field', (r, i) => (i[pick(r, ['colour', 'Type', '__proto__x', 'seq'])] = 'x')],
  ['a control character in the message', (_r, i) => (i.message = 'bell\u0007here')],
  ['a message over 65536 characters', (r, i) => (i.message = 'm'.repeat(65_537 + int(r, 0, 100)))],
  [
    'an empty or overlong label',
    (r, i) =>
      (i[pick(r, ['clientId', 'category', 'action', 'actor', 'source', 'correlationId'])] = pick(
        r,
        ['', 'l'.repeat(257)],
      )),
  ],
  ['a bad inbox', (r, i) => (i.inbox = pick(r, ['', 'two words', 'x'.repeat(129), 'inbox*']))],
  ['a bad id', (r, i) => (i[pick(r, ['id', 'parentId'])] = pick(r, ['', 'has space', 'é']))],
  [
    'a bad resource',
    (r, i) =>
      (i.resource = pick(r, [
        { type: 'vm' },
        'vm',
        { type: '', id: '1' },
        { type: 'vm', id: '1', extra: 1 },
        [],
      ])),
  ],
];

/** A random input broken by one of {@link BREAKERS}; returns it and what is wrong with it. */
function brokenInput(r: Rng): { input: Input; flaw: string } {
  const input = validishInput(r);
  const [flaw, breaks] = pick(r, BREAKERS);
  breaks(r, input);
  return { input, flaw };
}

// ---------------------------------------------------------------------------------------------
// GraphQL documents.

const SAFE_QUERY =
  '{ events(first: 3) { edges { cursor node { id type } } pageInfo { hasNextPage } } }';
const SUBSCRIPTION = 'subscription { eventStream { id cursor type } }';
const TOKENS: readonly string[] = [
  ...'{ } ( ) [ ] : $ @ ... ! = | & -0 123 1.5e999 true null Int String! on input'.split(' '),
  ...'query mutation subscription fragment events event publishEvent eventStream'.split(' '),
  ...'__schema __type __typename "str" """block""" "unterminated \\u0041 💥'.split(' '),
  '#comment\n',
  '\u0000',
];

/** A document that is not valid GraphQL (syntax, structure or schema). */
function garbageDocument(r: Rng): {
  flaw: string;
  query: string;
  variables?: unknown;
  mayPass?: boolean;
} {
  switch (int(r, 0, 13)) {
    case 0: {
      const tokens = Array.from({ length: int(r, 1, 300) }, () => pick(r, TOKENS));
      return { flaw: 'random tokens', query: tokens.join(pick(r, [' ', '', '\n', ','])) };
    }
    case 1:
      return {
        flaw: 'unbalanced braces',
        query: `${'{'.repeat(int(r, 1, 3000))} events ${'}'.repeat(int(r, 0, 50))}`,
      };
    case 2:
      return { flaw: 'random text', query: junk(r, int(r, 1, 2000)) };
    case 3: {
      const depth = pick(r, [100, 500, 500, 2_000, 10_000, 50_000]);
      return {
        flaw: `${depth} levels of {a{a{...}}}`,
        query: `{${'a{'.repeat(depth)}a${'}'.repeat(depth + 1)}`,
      };
    }
    case 4: {
      const depth = pick(r, [50, 500, 3_000]);
      const field = pick(r, ['parent', 'children']);
      return {
        flaw: `${depth} levels of ${field}`,
        query: `{ events(first: 1) { nodes { ${`${field} { `.repeat(depth)}id${' }'.repeat(depth)} } } }`,
        // Without a depth limit this is a valid query over an empty history.
        mayPass: true,
      };
    }
    case 5: {
      const n = pick(r, [1_000, 3_000, 10_000]);
      const field = pick(r, [
        '__typename',
        'events(first: 1) { nodes { id } }',
        'event(id: "x") { id }',
      ]);
      const aliases = Array.from({ length: n }, (_, i) => `a${i}: ${field}`).join(' ');
      return { flaw: `${n} aliases of ${field}`, query: `{ ${aliases} }`, mayPass: true };
    }
    case 6: {
      const n = int(r, 2, 40);
      const fragments = Array.from(
        { length: n },
        (_, i) =>
          `fragment F${i} on Query { ...F${(i + 1) % n} events(first: 1) { nodes { id } } }`,
      );
      return { flaw: `a cycle of ${n} fragments`, query: `{ ...F0 } ${fragments.join(' ')}` };
    }
    case 7:
      return {
        flaw: 'a fragment spreading itself through a field',
        query:
          '{ events { nodes { ...E } } } fragment E on Event { id parent { ...E } children { ...E } }',
      };
    case 8: {
      // Each fragment spreads the previous one twice: 2^levels fields once expanded.
      const levels = int(r, 10, 40);
      const fragments = Array.from({ length: levels }, (_, i) =>
        i === 0
          ? 'fragment L0 on Query { __typename }'
          : `fragment L${i} on Query { ...L${i - 1} ...L${i - 1} }`,
      );
      return {
        flaw: `a fragment bomb of ${levels} levels`,
        query: `{ ...L${levels - 1} } ${fragments.join(' ')}`,
        mayPass: true,
      };
    }
    case 9:
      return {
        flaw: 'an unknown field or argument',
        query: pick(r, [
          '{ nope }',
          '{ events(bogus: 1) { edges { cursor } } }',
          '{ events { edges { node { nope } } } }',
          '{ events(first: "ten") { edges { cursor } } }',
          '{ events(filter: { severities: [LOUD] }) { edges { cursor } } }',
          '{ events(order: SIDEWAYS) { edges { cursor } } }',
          'mutation { publishEvent(input: { type: "x" }, extra: 1) { id } }',
          'mutation { publishEvent { id } }',
          'mutation { publishEvent(input: { type: "x" }) { nope } }',
          'mutation { publishEvent(input: { type: "x" }) }',
          'subscription { eventStream { id } events { edges { cursor } } }',
          'subscription { eventStream(nope: 1) { id } }',
          '{ event(id: "x") { parent(x: 1) { id } } }',
          'query Q { __typename } query Q { __typename }',
          'query A { __typename } query B { __typename }',
          '{ __typename @nope }',
          '{ __typename @skip }',
          '{ __type(name: 5) { name } }',
          '{ __schema { nope } }',
          'query($v: Int) { __typename }',
          'query { event(id: $undeclared) { id } }',
          'subscription A { eventStream { id } } subscription B { eventStream { id } }',
        ]),
      };
    case 10: {
      const n = pick(r, [10_000, 200_000, 900_000]);
      return {
        flaw: `a ${n}-character string argument`,
        query: pick(r, [
          `{ event(id: "${'x'.repeat(n)}") { id } }`,
          `{ events(filter: { types: ["${'t'.repeat(n)}"] }) { edges { cursor } } }`,
          `{ __type(name: "${'T'.repeat(n)}") { name } }`,
        ]),
        mayPass: true,
      };
    }
    case 11: {
      const n = pick(r, [50_000, 500_000, 2 * maxRequestBytes]);
      return {
        flaw: `${n} characters of comment or whitespace`,
        query: pick(r, [`#${'c'.repeat(n)}`, `${' '.repeat(n)}{`, `{ ${'\n'.repeat(n)}`]),
      };
    }
    case 12:
      return {
        flaw: 'introspection abuse',
        query: pick(r, [
          INTROSPECTION,
          `{ ${Array.from({ length: int(r, 50, 300) }, (_, i) => `s${i}: __schema { types { name fields { name args { name } } } }`).join(' ')} }`,
          nest(
            '{ __schema { types { ',
            'fields { type { ',
            int(r, 5, 60),
            'name',
            ' } }',
            ' } } }',
          ),
          nest(
            '{ __schema { types { fields { type { ',
            'ofType { ',
            int(r, 10, 300),
            'name',
            ' }',
            ' } } } } }',
          ),
          nest(
            '{ __schema { queryType { fields { type { ',
            'fields { type { ',
            int(r, 5, 100),
            'name',
            ' } }',
            ' } } } } }',
          ),
        ]),
        mayPass: true,
      };
    default:
      return { flaw: 'a valid operation with wrong variables', ...wrongVariables(r) };
  }
}

/** `open` + `level` × n + `inner` + `close` × n + `end`: a selection nested n levels. */
function nest(
  start: string,
  level: string,
  n: number,
  inner: string,
  close: string,
  end: string,
): string {
  return `${start}${level.repeat(n)}${inner}${close.repeat(n)}${end}`;
}

/** The full introspection query of GraphiQL, abridged to its shape. */
const INTROSPECTION = `query IntrospectionQuery { __schema { queryType { name } mutationType { name }
  subscriptionType { name } types { ...FullType } directives { name description locations args { ...InputValue } } } }
fragment FullType on __Type { kind name description fields(includeDeprecated: true) { name description
  args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason } inputFields { ...InputValue }
  interfaces { ...TypeRef } enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef } }
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType {
  kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }`;

/** Operations whose variables are then given values of the wrong type. */
const TYPED_OPERATIONS: readonly { query: string; wrong: readonly unknown[] }[] = [
  {
    query: 'query($f: Int) { events(first: $f) { edges { cursor } } }',
    wrong: ['ten', 1e100, 2.5, [1], { a: 1 }, true],
  },
  {
    query: 'query($a: String) { events(after: $a) { edges { cursor } } }',
    wrong: [12, ['x'], { a: 1 }, '-1', 'garbage', '%00'],
  },
  {
    query: 'query($s: [Severity!]) { events(filter: { severities: $s }) { edges { cursor } } }',
    wrong: [['LOUD'], 'LOUD', [null], [5], [{ s: 'INFO' }]],
  },
  {
    query: 'query($o: EventOrder!) { events(order: $o) { edges { cursor } } }',
    wrong: ['SIDEWAYS', null, 1, ['NEWEST_FIRST']],
  },
  {
    query: 'query($t: DateTime) { events(filter: { since: $t }) { edges { cursor } } }',
    wrong: ['yesterday', 8.64e15 + 1, '2026-13-01T00:00:00Z', '+275760-09-13T00:00:00.001Z', {}],
  },
];

/**
 * An operation with a variable of the wrong type; or with variables that are not an object, which
 * a lenient server may ignore (then the operation is valid).
 */
function wrongVariables(r: Rng): { query: string; variables: unknown; mayPass?: boolean } {
  const { query, wrong } = pick(r, TYPED_OPERATIONS);
  const name = /\$(\w+)/.exec(query)?.[1] ?? 'v';
  if (chance(r, 0.85)) return { query, variables: { [name]: pick(r, wrong) } };
  return {
    query,
    variables: pick(r, ['not an object', [1, 2, 3], 42, `{"${name}": [[5]]}`]),
    mayPass: true,
  };
}

/** A publish mutation that must be refused, with its variables and what is wrong with it. */
function invalidPublish(r: Rng): { flaw: string; query: string; variables?: unknown } {
  const shape = int(r, 0, 6);
  if (shape === 0) {
    const { input, flaw } = brokenInput(r);
    return { flaw, query: `mutation { publishEvent(input: ${literal(input)}) { id cursor } }` };
  }
  if (shape === 1) {
    const { input, flaw } = brokenInput(r);
    return {
      flaw,
      query: 'mutation($e: PublishEventInput!) { publishEvent(input: $e) { id cursor } }',
      variables: { e: input },
    };
  }
  if (shape === 2 || shape === 3) {
    // Valid events around one invalid one: the batch is atomic, so none may be stored.
    const inputs = Array.from({ length: int(r, 0, 6) }, () => validishInput(r));
    const { input, flaw } = brokenInput(r);
    inputs.splice(int(r, 0, inputs.length), 0, input);
    return shape === 2
      ? {
          flaw: `a batch with ${flaw}`,
          query: `mutation { publishEvents(inputs: ${literal(inputs)}) { id } }`,
        }
      : {
          flaw: `a batch with ${flaw}`,
          query: 'mutation($l: [PublishEventInput!]!) { publishEvents(inputs: $l) { id } }',
          variables: { l: inputs },
        };
  }
  if (shape === 4) {
    const n = maxBatch + int(r, 1, 50);
    return {
      flaw: `a batch of ${n} events (TIDINGS_MAX_BATCH is ${maxBatch})`,
      query: 'mutation($l: [PublishEventInput!]!) { publishEvents(inputs: $l) { id } }',
      variables: { l: Array.from({ length: n }, (_, i) => ({ type: 'fuzz.batch', id: `b-${i}` })) },
    };
  }
  if (shape === 5) {
    const n = int(r, 2, 40);
    const fields = Array.from(
      { length: n },
      (_, i) => `p${i}: publishEvent(input: ${literal(brokenInput(r).input)}) { id }`,
    );
    return { flaw: `${n} aliased invalid publishes`, query: `mutation { ${fields.join(' ')} }` };
  }
  return pick(r, [
    {
      flaw: 'a variable of the wrong declared type',
      query: 'mutation($e: String) { publishEvent(input: $e) { id } }',
      variables: { e: 'x' },
    },
    {
      flaw: 'a missing required variable',
      query: 'mutation($e: PublishEventInput!) { publishEvent(input: $e) { id } }',
      variables: {},
    },
    {
      flaw: 'a scalar for an input object',
      query: 'mutation($e: PublishEventInput!) { publishEvent(input: $e) { id } }',
      variables: { e: pick(r, ['vm.started', 5, null, [{ type: 'x' }], true]) },
    },
    {
      flaw: 'a list of nulls',
      query: 'mutation($l: [PublishEventInput!]!) { publishEvents(inputs: $l) { id } }',
      variables: { l: [null, { type: 'x' }] },
    },
    {
      flaw: 'an input object for a list, holding a bad type',
      query: 'mutation { publishEvents(inputs: { type: 7 }) { id } }',
    },
  ]);
}

/** Cursors and `Last-Event-ID` values that Tidings did not issue. */
function badCursor(r: Rng): string {
  return pick(r, [
    'garbage',
    '-1',
    '0',
    '000000000000',
    'zzzzzzzzzzzz',
    '99999999999999999999',
    '1e309',
    'NaN',
    'null',
    '[]',
    '{"a":1}',
    '%00',
    "'; DROP TABLE events; --",
    '../../../etc/passwd',
    'x'.repeat(int(r, 100, 10_000)),
    printable(r, int(r, 1, 200)).trim() || 'p',
  ]);
}

// ---------------------------------------------------------------------------------------------
// Requests.

const JSON_HEADERS = { 'content-type': 'application/json', accept: 'application/json' };
const STREAM_HEADERS = { 'content-type': 'application/json', accept: 'text/event-stream' };

const query = (params: Record<string, unknown>) =>
  new URLSearchParams(
    Object.entries(params).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]),
  ).toString();

/** A JSON body that does not parse, or parses to something that is not a GraphQL request. */
function brokenBody(r: Rng): {
  flaw: string;
  body: string | Uint8Array<ArrayBuffer>;
  mayPass?: boolean;
} {
  const valid = JSON.stringify({ query: SAFE_QUERY, variables: { a: [1, 2] } });
  switch (int(r, 0, 7)) {
    case 0:
      return { flaw: 'truncated JSON', body: valid.slice(0, int(r, 0, valid.length - 1)) };
    case 1: {
      const at = int(r, 0, valid.length);
      return {
        flaw: 'JSON with junk inserted',
        body: `${valid.slice(0, at)}${pick(r, ['{', '"', ',', ']', '\\', '\u0000', junk(r, 5)])}${valid.slice(at)}`,
        // Junk inside a string value can leave valid JSON and a valid query.
        mayPass: true,
      };
    }
    case 2: {
      const bytes = new Uint8Array(int(r, 1, 4000));
      for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(r() * 256);
      return { flaw: 'random bytes', body: bytes };
    }
    case 3:
      return {
        flaw: 'JSON that is not a request object',
        body: pick(r, [
          'null',
          '[]',
          '[{"query":"{ __typename }"}]',
          '"query"',
          '42',
          'true',
          '{}',
          '',
        ]),
        mayPass: true,
      };
    case 4:
      return {
        flaw: 'request parameters of the wrong type',
        body: JSON.stringify(
          pick(r, [
            { query: 5 },
            { query: null },
            { query: ['{ __typename }'] },
            { query: { kind: 'Document' } },
            { query: SAFE_QUERY, operationName: 5 },
            { query: SAFE_QUERY, operationName: 'Missing' },
            { query: SAFE_QUERY, variables: 'not json' },
            { query: SAFE_QUERY, variables: [1, 2] },
            { query: SAFE_QUERY, extensions: 'x' },
            { query: SAFE_QUERY, extensions: [1] },
            { query: SAFE_QUERY, unexpected: true },
            { variables: {} },
          ]),
        ),
        mayPass: true,
      };
    case 5: {
      const depth = pick(r, [1_000, 100_000, 400_000]);
      return {
        flaw: `JSON nested ${depth} levels`,
        body: `{"query":"{ __typename }","variables":{"v":${'['.repeat(depth)}${']'.repeat(depth)}}}`,
        mayPass: true,
      };
    }
    case 6:
      return {
        flaw: 'JSON with a byte order mark, NULs or lone surrogates',
        body: pick(r, [
          `\ufeff${valid}`,
          `${valid}\u0000`,
          `{"query":"{ __typename }\\ud800"}`,
          `{"query":"\\u0000"}`,
          `${valid}${valid}`,
          `${valid} trailing`,
        ]),
        mayPass: true,
      };
    default:
      return {
        flaw: 'duplicated and prototype keys',
        body: pick(r, [
          `{"query":"{ nope }","query":"${SAFE_QUERY}","__proto__":{"query":1}}`,
          `{"__proto__":{"query":"{ __typename }"}}`,
          `{"constructor":{"prototype":{"query":"x"}},"query":"{ __typename }"}`,
        ]),
        mayPass: true,
      };
  }
}

/** A request of each family, chosen at random. */
function generate(r: Rng, badAuths: readonly BadAuth[]): FuzzCase {
  const family = int(r, 0, 99);
  if (family < 12) {
    const { flaw, body, mayPass } = brokenBody(r);
    const toStream = chance(r, 0.25);
    return {
      kind: `broken JSON body: ${flaw}`,
      method: 'POST',
      path: toStream ? pick(r, ['/graphql/stream', '/graphql']) : '/graphql',
      headers: toStream ? STREAM_HEADERS : JSON_HEADERS,
      body,
      mayPass,
    };
  }
  if (family < 20) {
    const contentType = pick(r, [
      'text/plain',
      'application/xml',
      'multipart/form-data',
      'multipart/form-data; boundary=xyz',
      'application/x-www-form-urlencoded',
      'application/graphql',
      'application/json; charset=utf-16',
      'application/json;;;',
      'application/jsonx',
      'image/png',
      '',
      junk(r, 20).replace(/[^\x20-\x7e]/g, ''),
    ]);
    const { query: q } = chance(r, 0.5) ? { query: SAFE_QUERY } : invalidPublish(r);
    const raw = chance(r, 0.5);
    const toStream = chance(r, 0.3);
    return {
      kind: `content type ${JSON.stringify(contentType)}`,
      method: 'POST',
      path: toStream ? '/graphql/stream' : '/graphql',
      headers: {
        accept: toStream ? 'text/event-stream' : 'application/json',
        ...(contentType ? { 'content-type': contentType } : {}),
      },
      body: raw ? q : chance(r, 0.5) ? JSON.stringify({ query: q }) : query({ query: q }),
      mayPass: true,
    };
  }
  if (family < 40) {
    const doc = garbageDocument(r);
    const { variables } = doc;
    const via = int(r, 0, 9);
    if (via < 7) {
      return {
        kind: `GraphQL document: ${doc.flaw}`,
        method: 'POST',
        path: '/graphql',
        headers: chance(r, 0.8)
          ? JSON_HEADERS
          : { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
        body: JSON.stringify({ query: doc.query, variables }),
        mayPass: doc.mayPass,
      };
    }
    const getPath = `/graphql?${query({ query: doc.query, ...(variables === undefined ? {} : { variables }) })}`;
    if (via < 8 && getPath.length < MAX_URL) {
      return {
        kind: `GraphQL document over GET: ${doc.flaw}`,
        method: 'GET',
        path: getPath,
        headers: { accept: 'application/json' },
        mayPass: doc.mayPass,
      };
    }
    return {
      kind: `GraphQL document on the stream endpoint: ${doc.flaw}`,
      method: 'POST',
      path: pick(r, ['/graphql/stream', '/graphql']),
      headers: STREAM_HEADERS,
      body: JSON.stringify({ query: doc.query, variables }),
      mayPass: doc.mayPass,
    };
  }
  if (family < 64) {
    const { flaw, query: q, variables } = invalidPublish(r);
    const via = int(r, 0, 9);
    if (via < 7) {
      return {
        kind: `invalid publish: ${flaw}`,
        method: 'POST',
        path: '/graphql',
        headers: JSON_HEADERS,
        body: JSON.stringify({ query: q, variables }),
      };
    }
    const params = query({ query: q, ...(variables === undefined ? {} : { variables }) });
    if (via < 9 || params.length > MAX_URL) {
      return {
        kind: `invalid publish on the stream endpoint: ${flaw}`,
        method: 'POST',
        path: '/graphql/stream',
        headers: STREAM_HEADERS,
        body: JSON.stringify({ query: q, variables }),
      };
    }
    return {
      kind: `publish over GET: ${flaw}`,
      method: 'GET',
      path: `${pick(r, ['/graphql', '/graphql/stream'])}?${params}`,
      headers: { accept: pick(r, ['application/json', 'text/event-stream']) },
    };
  }
  if (family < 82) return streamCase(r);
  if (family < 90) {
    const inner = generate(r, badAuths);
    if (inner.badAuth) return inner;
    // Node refuses more than 16 KiB of request line and headers (431, no body): stay within.
    const used =
      inner.path.length +
      Object.entries(inner.headers).reduce((n, [k, v]) => n + k.length + v.length + 4, 0);
    const padding = Math.min(int(r, 2_000, 12_000), 15_000 - used);
    if (padding < 1_000) return inner;
    const headers: Record<string, string> = { ...inner.headers };
    if (chance(r, 0.5)) headers['x-fuzz-padding'] = 'p'.repeat(padding);
    else for (let i = 0; i < padding / 120; i++) headers[`x-fuzz-${i}`] = printable(r, 100).trim();
    return { ...inner, kind: `huge headers (${padding} bytes) on ${inner.kind}`, headers };
  }
  return badAuthCase(r, badAuths);
}

/** Requests to the graphql-sse endpoints: both modes, bad cursors, bad reservation tokens. */
function streamCase(r: Rng): FuzzCase {
  const path = pick(r, ['/graphql/stream', '/graphql/stream', '/graphql']);
  switch (int(r, 0, 7)) {
    case 0: {
      // A valid subscription resuming from a Last-Event-ID Tidings never issued.
      const lastEventId = badCursor(r);
      const viaGet = chance(r, 0.6);
      return {
        kind: `a subscription with Last-Event-ID ${JSON.stringify(lastEventId.slice(0, 40))}`,
        method: viaGet ? 'GET' : 'POST',
        path: viaGet ? `${path}?${query({ query: SUBSCRIPTION })}` : path,
        headers: { ...STREAM_HEADERS, 'last-event-id': lastEventId },
        body: viaGet ? undefined : JSON.stringify({ query: SUBSCRIPTION }),
        mayPass: true,
        mayStayOpen: true,
      };
    }
    case 1: {
      const args = pick(r, [
        `after: ${JSON.stringify(badCursor(r))}`,
        `inboxes: ${literal(Array.from({ length: int(r, 0, 80) }, () => pick(r, ['ok', '', 'a b', 'x*', '*', 'é'])))}`,
        `clientId: ${JSON.stringify(junk(r, int(r, 0, 300)))}`,
        `filter: { since: ${JSON.stringify(pick(r, ['yesterday', '2026-13-01T00:00:00Z', '']))} }`,
        `filter: { types: [${JSON.stringify('t'.repeat(int(r, 100, 5000)))}] }`,
        `filter: { severities: [LOUD] }`,
        'inboxes: "pdfm"',
        'after: 5',
      ]);
      const q = `subscription { eventStream(${args}) { id cursor } }`;
      const viaGet = chance(r, 0.5) && query({ query: q }).length < MAX_URL;
      return {
        kind: `a subscription with odd arguments: ${args.slice(0, 80)}`,
        method: viaGet ? 'GET' : 'POST',
        path: viaGet ? `${path}?${query({ query: q })}` : path,
        headers: STREAM_HEADERS,
        body: viaGet ? undefined : JSON.stringify({ query: q }),
        // Some of these are valid (an empty inbox list, an odd client id).
        mayPass: true,
        mayStayOpen: true,
      };
    }
    case 2: {
      // GET with query parameters that are missing, malformed or of the wrong kind.
      const params = pick(r, [
        {},
        { query: '' },
        { query: SUBSCRIPTION, variables: '{not json' },
        { query: SUBSCRIPTION, variables: '[1]' },
        { query: SUBSCRIPTION, variables: '"text"' },
        { query: SUBSCRIPTION, extensions: '{' },
        { query: SUBSCRIPTION, operationName: 'Nope' },
        { query: junk(r, int(r, 1, 500)) },
        { variables: '{}' },
      ]);
      return {
        kind: `a stream GET with parameters ${JSON.stringify(params).slice(0, 80)}`,
        method: 'GET',
        path: `${path}?${new URLSearchParams(params as Record<string, string>).toString()}`,
        headers: { accept: 'text/event-stream', 'last-event-id': badCursor(r) },
      };
    }
    case 3: {
      // Reservation tokens that do not exist, in the header or the query string.
      const token = pick(r, [
        'nope',
        '00000000-0000-0000-0000-000000000000',
        printable(r, 36).trim() || 't',
        'x'.repeat(8_000),
        '../../etc/passwd',
        "' OR 1=1 --",
      ]);
      const inHeader = chance(r, 0.6);
      const method = pick(r, ['GET', 'POST', 'DELETE', 'PATCH', 'GET', 'POST']);
      const accept = pick(r, ['text/event-stream', 'application/json', '*/*']);
      const body =
        method === 'POST'
          ? JSON.stringify({
              query: pick(r, [SUBSCRIPTION, SAFE_QUERY, '{ nope }']),
              extensions: { operationId: 'op-1' },
            })
          : undefined;
      const search = new URLSearchParams({
        ...(inHeader ? {} : { token }),
        ...(method === 'DELETE' ? { operationId: 'op-1' } : {}),
        ...(method === 'GET' && chance(r, 0.5) ? { query: SUBSCRIPTION } : {}),
      }).toString();
      return {
        kind: `an unknown reservation token in the ${inHeader ? 'header' : 'query string'} (${method}, ${accept})`,
        method,
        path: `/graphql/stream${search ? `?${search}` : ''}`,
        headers: {
          accept,
          ...(body ? { 'content-type': 'application/json' } : {}),
          ...(inHeader ? { 'x-graphql-event-stream-token': token } : {}),
        },
        body,
        // Without a known token, a GET or POST asking for a stream is a distinct-mode stream.
        mayPass: true,
        mayStayOpen: true,
      };
    }
    case 4: {
      // PUT and DELETE misuse.
      return pick<FuzzCase>(r, [
        { kind: 'DELETE without a token', method: 'DELETE', path: '/graphql/stream', headers: {} },
        {
          kind: 'DELETE of an operation without a token',
          method: 'DELETE',
          path: '/graphql/stream?operationId=op-1',
          headers: { accept: 'application/json' },
        },
        {
          kind: 'PUT with a body and a token',
          method: 'PUT',
          path: '/graphql/stream',
          headers: { 'content-type': 'application/json', 'x-graphql-event-stream-token': 'nope' },
          body: JSON.stringify({ query: SUBSCRIPTION }),
          mayPass: true,
        },
        {
          kind: 'PUT asking for a stream',
          method: 'PUT',
          path: '/graphql/stream',
          headers: { accept: 'text/event-stream' },
          mayPass: true,
        },
        { kind: 'PATCH without a token', method: 'PATCH', path: '/graphql/stream', headers: {} },
        {
          kind: 'DELETE on /graphql',
          method: 'DELETE',
          path: '/graphql',
          headers: { accept: 'application/json' },
        },
        {
          kind: 'PUT on /graphql',
          method: 'PUT',
          path: '/graphql',
          headers: JSON_HEADERS,
          body: JSON.stringify({ query: SAFE_QUERY }),
        },
      ]);
    }
    case 5: {
      // Hostile requests carrying a real reservation.
      const publish = invalidPublish(r);
      const c = pick<FuzzCase>(r, [
        {
          kind: 'DELETE of a reservation without an operation id',
          method: 'DELETE',
          path: '/graphql/stream',
          headers: { 'x-graphql-event-stream-token': '{{token}}' },
        },
        {
          kind: 'DELETE of an operation that does not exist',
          method: 'DELETE',
          path: `/graphql/stream?${query({ token: '{{token}}', operationId: junk(r, 20) })}`,
          headers: {},
          mayPass: true,
        },
        {
          kind: 'an operation without an operation id',
          method: 'POST',
          path: '/graphql/stream',
          headers: { ...JSON_HEADERS, 'x-graphql-event-stream-token': '{{token}}' },
          body: JSON.stringify({ query: SUBSCRIPTION }),
        },
        {
          kind: 'an operation id of the wrong type',
          method: 'POST',
          path: '/graphql/stream',
          headers: { ...JSON_HEADERS, 'x-graphql-event-stream-token': '{{token}}' },
          body: JSON.stringify({ query: SUBSCRIPTION, extensions: { operationId: 5 } }),
        },
        {
          kind: 'a garbage operation on a reservation',
          method: 'POST',
          path: '/graphql/stream',
          headers: { ...JSON_HEADERS, 'x-graphql-event-stream-token': '{{token}}' },
          body: JSON.stringify({
            query: garbageDocument(r).query.slice(0, 50_000),
            extensions: { operationId: 'op' },
          }),
          // A reservation runs a valid operation and answers 202.
          mayPass: true,
        },
        {
          kind: 'an invalid publish on a reservation',
          method: 'POST',
          path: '/graphql/stream',
          headers: { ...JSON_HEADERS, 'x-graphql-event-stream-token': '{{token}}' },
          body: JSON.stringify({
            query: publish.query,
            variables: publish.variables,
            extensions: { operationId: 'op' },
          }),
          // Refused at execution time, its error goes to the (never opened) stream after a 202.
          mayPass: true,
        },
        {
          kind: 'broken JSON on a reservation',
          method: 'POST',
          path: '/graphql/stream',
          headers: { ...JSON_HEADERS, 'x-graphql-event-stream-token': '{{token}}' },
          body: brokenBody(r).body,
          mayPass: true,
        },
        {
          kind: 'PATCH on a reservation',
          method: 'PATCH',
          path: '/graphql/stream',
          headers: { 'x-graphql-event-stream-token': '{{token}}' },
        },
        {
          kind: 'opening a reservation with a bad Last-Event-ID',
          method: 'GET',
          path: '/graphql/stream?token={{token}}',
          headers: { accept: 'text/event-stream', 'last-event-id': badCursor(r) },
          mayPass: true,
          mayStayOpen: true,
        },
      ]);
      return { ...c, reserve: true };
    }
    case 6: {
      const { query: q, variables } = invalidPublish(r);
      return {
        kind: 'an invalid publish as a stream POST with a bad Last-Event-ID',
        method: 'POST',
        path,
        headers: { ...STREAM_HEADERS, 'last-event-id': badCursor(r) },
        body: JSON.stringify({ query: q, variables }),
      };
    }
    default:
      return {
        kind: 'a stream POST without a usable body',
        method: 'POST',
        path,
        headers: pick(r, [STREAM_HEADERS, { accept: 'text/event-stream' }]),
        body: pick(r, ['', 'null', '[]', '{"query":""}', '{"query":5}', 'x']),
      };
  }
}

/** Credentials that must not let a request through under `TIDINGS_AUTH=jwt`. */
interface BadAuth {
  name: string;
  headers: Record<string, string>;
  /** Appended to the query string. */
  search?: string;
}

async function badAuths(r: Rng): Promise<BadAuth[]> {
  const now = Date.now();
  const admin: TokenRequest = {
    secret: SECRET,
    subject: 'mallory',
    scopes: ['events:admin'],
    inboxes: null,
    clientId: null,
    ttlSeconds: 3600,
    issuer: null,
    audience: null,
    jti: 'fuzz',
  };
  const valid = await mintToken(admin);
  const [header = '', , signature = ''] = valid.split('.');
  const claims = b64url(
    JSON.stringify({
      sub: 'mallory',
      scope: 'events:admin',
      iat: now / 1000,
      exp: now / 1000 + 3600,
    }),
  );
  const unsigned = (alg: string) => `${b64url(JSON.stringify({ alg, typ: 'JWT' }))}.${claims}.`;
  const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });
  return [
    { name: 'no credentials', headers: {} },
    { name: 'Bearer garbage', headers: bearer(printable(r, 40).replace(/\s/g, '_')) },
    { name: 'Bearer and nothing', headers: { authorization: 'Bearer' } },
    { name: 'a Basic scheme', headers: { authorization: 'Basic bWFsbG9yeTpwYXNz' } },
    { name: 'three garbage segments', headers: bearer('a.b.c') },
    { name: 'a 12 KB bearer token', headers: bearer('x'.repeat(12_000)) },
    { name: 'alg none', headers: bearer(unsigned('none')) },
    { name: 'alg NONE', headers: bearer(unsigned('NONE')) },
    { name: 'alg None with a signature', headers: bearer(`${unsigned('None')}${signature}`) },
    { name: 'alg HS256 without a signature', headers: bearer(`${header}.${claims}.`) },
    {
      name: 'a header that is not JSON',
      headers: bearer(`${b64url('{alg')}.${claims}.${signature}`),
    },
    { name: 'a tampered payload', headers: bearer(`${header}.${claims}.${signature}`) },
    {
      name: 'the wrong secret',
      headers: bearer(await mintToken({ ...admin, secret: `${SECRET}-not-this-one` })),
    },
    { name: 'an expired token', headers: bearer(await mintToken(admin, now - 2 * 3_600_000)) },
    {
      name: 'a token not valid yet',
      headers: bearer(
        await new SignJWT({ scope: 'events:admin' })
          .setProtectedHeader({ alg: 'HS256' })
          .setSubject('mallory')
          .setNotBefore(Math.floor(now / 1000) + 3600)
          .setExpirationTime(Math.floor(now / 1000) + 7200)
          .sign(new TextEncoder().encode(SECRET)),
      ),
    },
    {
      name: 'a garbage cookie',
      headers: { cookie: `tidings_token=${printable(r, 30).replace(/[;\s]/g, '_')}` },
    },
    { name: 'an alg none cookie', headers: { cookie: `tidings_token=${unsigned('none')}` } },
    { name: 'a cookie with a malformed %-escape', headers: { cookie: 'tidings_token=%E0%A4%A' } },
    { name: 'a bearer token of latin-1 bytes', headers: bearer('\u00e9\u00ff\u00a0x') },
    { name: 'a valid token with junk after it', headers: bearer(`${valid} extra`) },
    { name: 'a valid token in the query string', headers: {}, search: `access_token=${valid}` },
  ];
}

/** A harmless request carrying credentials that must be refused under `TIDINGS_AUTH=jwt`. */
function badAuthCase(r: Rng, auths: readonly BadAuth[]): FuzzCase {
  const auth = pick(r, auths);
  const carrier = pick<Omit<FuzzCase, 'kind'> & { what: string }>(r, [
    {
      what: 'a query',
      method: 'POST',
      path: '/graphql',
      headers: JSON_HEADERS,
      body: JSON.stringify({ query: SAFE_QUERY }),
    },
    {
      what: 'a GET query',
      method: 'GET',
      path: `/graphql?${query({ query: SAFE_QUERY })}`,
      headers: { accept: 'application/json' },
    },
    {
      what: 'an invalid publish',
      method: 'POST',
      path: '/graphql',
      headers: JSON_HEADERS,
      body: JSON.stringify({ query: invalidPublish(r).query }),
    },
    {
      what: 'a GET stream',
      method: 'GET',
      path: `/graphql/stream?${query({ query: SUBSCRIPTION })}`,
      headers: { accept: 'text/event-stream' },
      mayStayOpen: true,
    },
    {
      what: 'a POST stream',
      method: 'POST',
      path: '/graphql/stream',
      headers: STREAM_HEADERS,
      body: JSON.stringify({ query: SUBSCRIPTION }),
      mayStayOpen: true,
    },
    { what: 'a reservation', method: 'PUT', path: '/graphql/stream', headers: {} },
  ]);
  const { what, ...request } = carrier;
  const separator = request.path.includes('?') ? '&' : '?';
  return {
    ...request,
    kind: `${auth.name} on ${what}`,
    path: auth.search ? `${request.path}${separator}${auth.search}` : request.path,
    headers: { ...request.headers, ...auth.headers },
    badAuth: true,
    // Without auth, credentials are ignored and the request is valid.
    mayPass: true,
  };
}

/** The corpus of one seed: the same requests, in the same order, for both runs. */
async function corpus(seed: number): Promise<FuzzCase[]> {
  const r = random(seed);
  const auths = await badAuths(r);
  return Array.from({ length: CASES }, () => generate(r, auths));
}

// ---------------------------------------------------------------------------------------------
// Checking the answers.

/** The problem with a GraphQL JSON answer, or null. */
function checkJson(text: string, c: FuzzCase): string | null {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return `the body is not JSON: ${JSON.stringify(text.slice(0, 200))}`;
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return `the body is not a JSON object: ${text.slice(0, 200)}`;
  }
  const { errors, data } = body as { errors?: unknown; data?: unknown };
  if (errors === undefined) {
    if (c.mayPass && data !== undefined) return null;
    return `no errors in ${text.slice(0, 300)}`;
  }
  if (!Array.isArray(errors) || errors.length === 0)
    return `errors is not a list: ${text.slice(0, 300)}`;
  for (const error of errors as unknown[]) {
    const message = (error as { message?: unknown } | null)?.message;
    if (typeof message !== 'string') return `an error without a message: ${text.slice(0, 300)}`;
    if (MASKED.test(message)) return `an unexpected server error: ${text.slice(0, 300)}`;
  }
  return null;
}

/** The problem with an event stream's text, or null. */
function checkSse(text: string, ended: boolean, c: FuzzCase): string | null {
  const frames = text.split('\n\n');
  const tail = frames.pop() ?? '';
  if (ended && tail !== '')
    return `the stream ended inside a frame: ${JSON.stringify(tail.slice(0, 200))}`;
  if (frames.length === 0) return `no complete frame: ${JSON.stringify(text.slice(0, 200))}`;
  const events: { event: string; data: string }[] = [];
  for (const frame of frames) {
    let event: string | null = null;
    let data: string | null = null;
    for (const line of frame.split('\n')) {
      if (line.startsWith(':')) continue;
      const m = /^(retry|id|event|data):(?: ?(.*))?$/.exec(line);
      if (!m) return `a malformed line ${JSON.stringify(line.slice(0, 200))}`;
      const value = m[2] ?? '';
      if (m[1] === 'retry' && !/^\d+$/.test(value)) return `a bad retry: ${line}`;
      if (m[1] === 'event') event = value;
      if (m[1] === 'data') data = data === null ? value : `${data}\n${value}`;
    }
    if (event === null) {
      if (data !== null) return `data without an event: ${frame.slice(0, 200)}`;
      continue;
    }
    if (event !== 'next' && event !== 'complete')
      return `an unknown event ${JSON.stringify(event)}`;
    events.push({ event, data: data ?? '' });
  }
  let errorsSeen = false;
  for (const { event, data } of events) {
    if (event === 'complete') {
      if (data !== '' && !/^\{"id":".*"\}$/.test(data)) return `a bad complete frame: ${data}`;
      continue;
    }
    let payload: unknown;
    try {
      payload = JSON.parse(data);
    } catch {
      return `a next frame that is not JSON: ${data.slice(0, 200)}`;
    }
    const result = ((payload as { payload?: unknown }).payload ?? payload) as {
      data?: unknown;
      errors?: unknown;
    };
    const problem = checkJson(JSON.stringify(result), { ...c, mayPass: true });
    if (problem) return `a next frame with ${problem}`;
    if (Array.isArray(result.errors)) errorsSeen = true;
  }
  if (ended && !c.reserve && events.at(-1)?.event !== 'complete') {
    return `the stream ended without a complete frame: ${text.slice(-300)}`;
  }
  if (!c.mayPass && !errorsSeen) return `no error in the stream: ${text.slice(0, 300)}`;
  return null;
}

/** Reads a stream until it ends, or closes it: after a moment when it may stay open. */
async function readStream(
  res: Response,
  c: FuzzCase,
  deadline: number,
): Promise<{ text: string; ended: boolean }> {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let text = '';
  let firstFrameAt: number | null = null;
  for (;;) {
    const until =
      c.mayStayOpen && firstFrameAt !== null
        ? Math.min(firstFrameAt + STAY_OPEN_MS, deadline)
        : deadline;
    const wait = until - Date.now();
    if (wait <= 0) break;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), wait)));
    const chunk = await Promise.race([reader.read(), timeout]);
    clearTimeout(timer);
    if (chunk === null) break;
    if (chunk.done) return { text: text + decoder.decode(), ended: true };
    text += decoder.decode(chunk.value, { stream: true });
    if (firstFrameAt === null && text.includes('\n\n')) firstFrameAt = Date.now();
  }
  await reader.cancel().catch(() => {});
  return { text, ended: false };
}

/** A request as text for a failure report, long parts shortened. */
function describeCase(c: FuzzCase, index: number): string {
  const short = (text: string, max: number) =>
    text.length > max ? `${text.slice(0, max)}…(${text.length} chars)` : text;
  const padding = Object.keys(c.headers).filter((k) => k.startsWith('x-fuzz-'));
  const headers = Object.fromEntries(
    Object.entries(c.headers)
      .filter(([k]) => !k.startsWith('x-fuzz-'))
      .map(([k, v]) => [k, short(v, 120)]),
  );
  const body =
    c.body === undefined
      ? ''
      : typeof c.body === 'string'
        ? ` body=${JSON.stringify(short(c.body, 240))}`
        : ` body=<${c.body.length} random bytes>`;
  const extra = padding.length ? ` +${padding.length} padding headers` : '';
  return `#${index} [${c.kind}] ${c.method} ${short(c.path, 240)} headers=${JSON.stringify(headers)}${extra}${body}`;
}

/** One run of the corpus against `s`; returns its failures and the number of requests sent. */
async function run(
  s: TServer,
  cases: readonly FuzzCase[],
  auth: Record<string, string> | null,
): Promise<{ failures: string[]; sent: number; statuses: Map<number, number> }> {
  const failures: string[] = [];
  const statuses = new Map<number, number>();
  let sent = 0;
  let next = 0;

  async function one(c: FuzzCase): Promise<string | null> {
    const deadline = Date.now() + DEADLINE_MS;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), DEADLINE_MS);
    try {
      const credentials = auth && !c.badAuth ? auth : {};
      let path = c.path;
      let headers = { ...c.headers, ...credentials };
      if (c.reserve) {
        sent++;
        const reserved = await fetch(`${s.url}/graphql/stream`, {
          method: 'PUT',
          headers: credentials,
          signal: controller.signal,
        });
        const token = await reserved.text();
        if (reserved.status !== 201) return `the reservation failed: ${reserved.status} ${token}`;
        path = path.replace('%7B%7Btoken%7D%7D', token).replace('{{token}}', token);
        headers = Object.fromEntries(
          Object.entries(headers).map(([k, v]) => [k, v.replace('{{token}}', token)]),
        );
      }
      sent++;
      const res = await fetch(`${s.url}${path}`, {
        method: c.method,
        headers,
        body: c.body,
        signal: controller.signal,
      });
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status >= 500) {
        return `HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`;
      }
      if (auth && c.badAuth) {
        if (res.status !== 401) {
          await res.body?.cancel();
          return `HTTP ${res.status} instead of 401`;
        }
        return checkJson(await res.text(), { ...c, mayPass: false });
      }
      const type = res.headers.get('content-type') ?? '';
      if (type.startsWith('text/event-stream')) {
        if (res.status !== 200) return `an event stream with HTTP ${res.status}`;
        const { text, ended } = await readStream(res, c, deadline);
        if (!ended && !c.mayStayOpen) return `the stream did not end within ${DEADLINE_MS} ms`;
        return checkSse(text, ended, c);
      }
      const text = await res.text();
      if (
        res.status === 204 ||
        (res.status === 202 && c.reserve) ||
        (res.status === 200 && c.method === 'DELETE' && c.reserve)
      ) {
        return text === ''
          ? null
          : `an unexpected body with HTTP ${res.status}: ${text.slice(0, 200)}`;
      }
      // GraphQL over HTTP does not require a body here; the status says what is wrong.
      if (res.status === 415 && text === '') return null;
      if (res.status === 201 && c.method === 'PUT') {
        return /^[\w-]{8,}$/.test(text)
          ? null
          : `a reservation without a token: ${text.slice(0, 200)}`;
      }
      const problem = checkJson(text, c);
      return problem ? `HTTP ${res.status}: ${problem}` : null;
    } catch (err) {
      const cause = (err as { cause?: unknown }).cause;
      return `the request failed: ${String(err)}${cause ? ` (${String(cause)})` : ''}`;
    } finally {
      clearTimeout(timer);
    }
  }

  async function worker(): Promise<void> {
    while (next < cases.length) {
      const index = next++;
      const c = cases[index] as FuzzCase;
      const problem = await one(c);
      if (problem) failures.push(`${describeCase(c, index)}\n    → ${problem}`);
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return { failures, sent, statuses };
}

/** Polls `condition` until it holds; rejects after `ms` naming `what`. */
async function waitFor(condition: () => boolean, what: string, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

// ---------------------------------------------------------------------------------------------

console.info(`fuzz seed ${SEED} (TIDINGS_FUZZ_SEED=${SEED} replays it)`);

describe.each([
  { name: 'without auth', jwt: false },
  { name: 'with TIDINGS_AUTH=jwt', jwt: true },
])('hostile requests $name', ({ name, jwt }) => {
  let s: TServer;
  let cases: FuzzCase[];
  let auth: Record<string, string> | null = null;

  beforeAll(async () => {
    // One caller whose reservations mostly never connect: as many may wait as there are cases.
    const reservations = { maxReservationsPerCaller: CASES };
    s = await tserver(jwt ? { auth: 'jwt', jwtSecret: SECRET, ...reservations } : reservations);
    cases = await corpus(SEED);
    if (jwt) {
      const token = await mintToken({
        secret: SECRET,
        subject: 'fuzz-admin',
        scopes: ['events:admin'],
        inboxes: null,
        clientId: null,
        ttlSeconds: 3600,
        issuer: null,
        audience: null,
        jti: 'fuzz-admin',
      });
      auth = { authorization: `Bearer ${token}` };
    }
  });
  afterAll(() => s?.stop());

  const post = async (body: unknown) => {
    const res = await fetch(`${s.url}/graphql`, {
      method: 'POST',
      headers: { ...JSON_HEADERS, ...auth },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  let systemEvents = 0;
  it('should answer every request with a 4xx or GraphQL errors, well-formed, and store nothing', async () => {
    const { failures, sent, statuses } = await run(s, cases, auth);
    const byStatus = [...statuses].sort(([a], [b]) => a - b).map(([k, n]) => `${k}×${n}`);
    console.info(
      `fuzz ${name}: ${sent} requests sent (seed ${SEED}; ${byStatus.join(' ')}), ` +
        `${failures.length} failures`,
    );
    if (process.env.TIDINGS_FUZZ_REPORT) {
      writeFileSync(
        `${process.env.TIDINGS_FUZZ_REPORT}.${jwt ? 'jwt' : 'none'}`,
        failures.join('\n'),
      );
    }
    expect(sent).toBeGreaterThanOrEqual(1_000);
    // Soft: the checks below still run, and tell whether the failures left anything behind.
    expect.soft(failures, `seed ${SEED}:\n${failures.slice(0, 30).join('\n')}`).toEqual([]);

    // Every stream the corpus opened is gone.
    await waitFor(() => s.app.hub.size === 0 && s.app.sse.size === 0, 'every stream to close');
    // Nothing of the corpus is stored. The only events are Tidings' own reports in the system
    // inbox: with auth on, the refused tokens were reported in bulk.
    const stored = (await s.app.store.readAfter(0, [], 1000)).events;
    expect(stored.filter((e) => e.inbox !== 'system')).toEqual([]);
    expect(stored.map((e) => e.type)).toEqual(jwt ? ['tidings.auth.rejected'] : []);
    systemEvents = stored.length;
    const events = await post({
      query: '{ events(first: 10, filter: { inboxes: ["global", "fuzz"] }) { edges { cursor } } }',
    });
    expect(events).toEqual({ status: 200, body: { data: { events: { edges: [] } } } });
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${s.url}/readyz`)).status).toBe(200);
    // 1,220 requests one after another: about 15 s here, several times that on a busy machine.
  }, 240_000);

  it('should still publish and deliver afterwards', async () => {
    const client = s.client(auth ? { headers: auth } : {});
    const sub = tsubscribe<{ eventStream: { type: string } }>(
      client,
      'subscription { eventStream(inboxes: ["fuzz"]) { type } }',
    );
    await waitFor(() => s.app.hub.size === 1 || sub.failure !== null, 'the stream to open');
    const published = await post({
      query: 'mutation { publishEvent(input: { type: "fuzz.after", inbox: "fuzz" }) { cursor } }',
    });
    expect(published.body.errors).toBeUndefined();
    const results = await sub.next(1);
    expect(results[0]?.data?.eventStream.type).toBe('fuzz.after');
    sub.unsubscribe();
    expect((await s.app.store.readAfter(0, [], 1000)).events).toHaveLength(systemEvents + 1);
  });
});
