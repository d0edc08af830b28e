/**
 * `tidings token`: mints an HS256 JWT for `TIDINGS_AUTH=jwt`, signed with the configured secret,
 * for testing and for local tools. It prints the token alone, so `$(tidings token --sub me)` works.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { SignJWT, type JWTPayload } from 'jose';
import { parseDuration } from '../config.js';
import type { CliIO } from './main.js';
import { SCOPES } from '../auth/principal.js';

/** The scopes a token may carry, as the server reads them from its `scope` claim. */
export const TOKEN_SCOPES = SCOPES;

/** The smallest HS256 secret accepted, bytes (the server refuses shorter ones too). */
export const MIN_SECRET_BYTES = 32;

/** The usage text of `tidings token --help`. */
export const TOKEN_USAGE = `Usage: tidings token --sub <subject> [options]

Prints a JWT signed with HS256 for a server started with TIDINGS_AUTH=jwt, then a newline.

Options:
  --sub <subject>          the token's subject (required)
  --scope "<scopes>"       space-separated: ${TOKEN_SCOPES.join(', ')} (default events:read)
  --inboxes <list>         comma-separated inbox names or prefix* patterns (default: every inbox)
  --client-id <id>         the client_id claim (the server defaults it to the subject)
  --ttl <duration>         lifetime, whole seconds: 30d, 12h, 15m, 90s, 5000ms (default 1h)
  --issuer <iss>           the iss claim (default TIDINGS_JWT_ISSUER, when set)
  --audience <aud>         the aud claim (default TIDINGS_JWT_AUDIENCE, when set)
  --jti <id>               the token id (default a random UUID)
  --secret <secret>        the HS256 secret, ${MIN_SECRET_BYTES} bytes or more (default TIDINGS_JWT_SECRET)
  -h, --help               show this help
`;

/** A bad invocation: reported as one line on stderr with exit code 2. */
class UsageError extends Error {}

/** What {@link parseTokenArgs} reads from the command line and the environment. */
export interface TokenRequest {
  secret: string;
  subject: string;
  scopes: string[];
  /** Null: the claim is left out, which gives every inbox. */
  inboxes: string[] | null;
  clientId: string | null;
  ttlSeconds: number;
  issuer: string | null;
  audience: string | null;
  jti: string;
}

/** An inbox name (`[A-Za-z0-9_.:-]`, 1–128 characters) or a prefix of one followed by `*`. */
const INBOX_PATTERN = /^(?:[A-Za-z0-9_.:-]{1,128}|[A-Za-z0-9_.:-]{0,127}\*)$/;

const OPTIONS = {
  sub: { type: 'string' },
  scope: { type: 'string' },
  inboxes: { type: 'string' },
  'client-id': { type: 'string' },
  ttl: { type: 'string' },
  issuer: { type: 'string' },
  audience: { type: 'string' },
  jti: { type: 'string' },
  secret: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** `value` unless it is absent or empty. */
const given = (value: string | undefined): string | null =>
  value === undefined || value === '' ? null : value;

function parseScopes(raw: string): string[] {
  const scopes = [...new Set(raw.split(/\s+/).filter((s) => s !== ''))];
  if (scopes.length === 0) {
    throw new UsageError(`--scope is empty: give one or more of ${TOKEN_SCOPES.join(', ')}`);
  }
  const unknown = scopes.find((s) => !(TOKEN_SCOPES as readonly string[]).includes(s));
  if (unknown !== undefined) {
    throw new UsageError(
      `unknown scope "${unknown}" in --scope: expected ${TOKEN_SCOPES.join(', ')} (space separated)`,
    );
  }
  return scopes;
}

function parseInboxes(raw: string): string[] {
  const inboxes = raw
    .split(',')
    .map((i) => i.trim())
    .filter((i) => i !== '');
  if (inboxes.length === 0) {
    throw new UsageError('--inboxes names no inbox: leave it out to allow every inbox');
  }
  const bad = inboxes.find((i) => !INBOX_PATTERN.test(i));
  if (bad !== undefined) {
    throw new UsageError(
      `bad inbox "${bad}" in --inboxes: use names of letters, digits and _ . : - (at most 128), ` +
        'optionally ending in * for a prefix',
    );
  }
  return inboxes;
}

function parseTtl(raw: string): number {
  let ms: number;
  try {
    ms = parseDuration('--ttl', raw);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (ms % 1000 !== 0) {
    throw new UsageError(
      `--ttl=${JSON.stringify(raw)} is invalid: expected whole seconds (JWT times are in seconds)`,
    );
  }
  return ms / 1000;
}

/**
 * Reads the token's settings from `args` (the arguments after `token`) and `env`.
 * @returns null when `--help` was asked for.
 * @throws Error with a one-line message for a usage error.
 */
export function parseTokenArgs(
  args: string[],
  env: Readonly<Record<string, string | undefined>>,
): TokenRequest | null {
  let values;
  try {
    ({ values } = parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return null;
  const secret = given(values.secret) ?? given(env.TIDINGS_JWT_SECRET);
  if (secret === null) {
    throw new UsageError(
      'no signing secret: set TIDINGS_JWT_SECRET or pass --secret (the server must use the same one)',
    );
  }
  if (Buffer.byteLength(secret) < MIN_SECRET_BYTES) {
    throw new UsageError(
      `the secret is ${Buffer.byteLength(secret)} bytes: HS256 needs at least ${MIN_SECRET_BYTES} ` +
        '(openssl rand -base64 48)',
    );
  }
  const subject = given(values.sub);
  if (subject === null) throw new UsageError('--sub <subject> is required');
  const jti = values.jti === undefined ? randomUUID() : given(values.jti);
  if (jti === null) throw new UsageError('--jti is empty: leave it out for a random one');
  const clientId = given(values['client-id']);
  if (values['client-id'] !== undefined && clientId === null) {
    throw new UsageError('--client-id is empty: leave it out to use the subject');
  }
  return {
    secret,
    subject,
    scopes: parseScopes(values.scope ?? 'events:read'),
    inboxes: values.inboxes === undefined ? null : parseInboxes(values.inboxes),
    clientId,
    ttlSeconds: parseTtl(values.ttl ?? '1h'),
    issuer: given(values.issuer) ?? given(env.TIDINGS_JWT_ISSUER),
    audience: given(values.audience) ?? given(env.TIDINGS_JWT_AUDIENCE),
    jti,
  };
}

/**
 * Signs the token described by `request`, issued at `now` (epoch ms).
 * @returns the compact JWT.
 */
export async function mintToken(request: TokenRequest, now: number = Date.now()): Promise<string> {
  const payload: JWTPayload = { scope: request.scopes.join(' ') };
  if (request.inboxes !== null) payload.inboxes = request.inboxes;
  if (request.clientId !== null) payload.client_id = request.clientId;
  const iat = Math.floor(now / 1000);
  const jwt = new SignJWT(payload)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(request.subject)
    .setIssuedAt(iat)
    .setExpirationTime(iat + request.ttlSeconds)
    .setJti(request.jti);
  if (request.issuer !== null) jwt.setIssuer(request.issuer);
  if (request.audience !== null) jwt.setAudience(request.audience);
  return jwt.sign(new TextEncoder().encode(request.secret));
}

/**
 * Runs `tidings token` with `args` (the arguments after `token`); resolves with the exit code:
 * 0 once the token is printed, 2 on a usage error (one line on stderr).
 */
export async function token(
  args: string[],
  io: CliIO,
  env: Readonly<Record<string, string | undefined>>,
): Promise<number> {
  let request: TokenRequest | null;
  try {
    request = parseTokenArgs(args, env);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.err(`tidings token: ${err.message}\n`);
    return 2;
  }
  if (request === null) {
    io.out(TOKEN_USAGE);
    return 0;
  }
  io.out(`${await mintToken(request)}\n`);
  return 0;
}
