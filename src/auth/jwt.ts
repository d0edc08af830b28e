/**
 * Authentication: who is calling. With `TIDINGS_AUTH=none` every caller is an admin; with `jwt`
 * each request carries a token (`Authorization: Bearer`, or the `tidings_token` cookie for
 * `EventSource`; never the query string) that jose verifies against an HS256 secret, a PEM public
 * key or a JWKS URL, with issuer, audience and a small clock skew, and that must not be revoked.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { TidingsConfig } from '../config.js';
import { AuthenticationError, ConfigError } from '../errors.js';
import { requireCapability } from '../store/index.js';
import type { EventStore } from '../store/types.js';
import { SCOPES, UNAUTHENTICATED_ADMIN, type Principal, type Scope } from './principal.js';

/** The cookie an `EventSource` can carry its token in. */
export const TOKEN_COOKIE = 'tidings_token';

/** Authenticates requests. */
export interface Authenticator {
  /** Whether requests need a token (`TIDINGS_AUTH=jwt`). */
  readonly required: boolean;
  /**
   * The caller of `req`.
   * @throws AuthenticationError (HTTP 401) for a missing, invalid, expired or revoked token.
   */
  authenticate(req: IncomingMessage): Promise<Principal>;
  /** Verifies a token itself (for tests and the CLI). */
  verify(token: string): Promise<Principal>;
}

type VerifyKey = Parameters<typeof jwtVerify>[1];

/** Algorithms accepted for a public key, by its type. */
function algorithmsFor(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
    case 'rsa-pss':
      return ['PS256', 'PS384', 'PS512'];
    case 'ec':
      return ['ES256', 'ES384', 'ES512'];
    case 'ed25519':
      return ['EdDSA', 'Ed25519'];
    default:
      throw new ConfigError(
        `TIDINGS_JWT_PUBLIC_KEY: a ${String(key.asymmetricKeyType)} key is not supported; use an RSA, EC or Ed25519 public key`,
      );
  }
}

/** Reads `TIDINGS_JWT_PUBLIC_KEY`: PEM text, or the path of a file holding it. */
function loadPublicKey(value: string): KeyObject {
  let pem = value;
  if (!value.includes('-----BEGIN')) {
    try {
      pem = readFileSync(value, 'utf8');
    } catch (err) {
      throw new ConfigError(
        `TIDINGS_JWT_PUBLIC_KEY: cannot read the key file "${value}": ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
  try {
    return createPublicKey(pem);
  } catch (err) {
    throw new ConfigError(
      `TIDINGS_JWT_PUBLIC_KEY is not a PEM public key (${(err as Error).message}): give the ` +
        '"-----BEGIN PUBLIC KEY-----" block or a file holding it',
      { cause: err },
    );
  }
}

/** The token of a request: the bearer token, else the cookie; null when there is none. */
export function tokenOf(req: IncomingMessage): string | null {
  const header = req.headers.authorization;
  if (header !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) {
      throw new AuthenticationError(
        'The Authorization header must be "Bearer <token>": other schemes are not accepted',
      );
    }
    return match[1] as string;
  }
  const value = cookieToken(req);
  if (value === null) return null;
  try {
    return decodeURIComponent(value);
  } catch (err) {
    throw new AuthenticationError(
      `The ${TOKEN_COOKIE} cookie is not validly encoded: set it to the token itself`,
      { cause: err },
    );
  }
}

/** The raw value of the request's {@link TOKEN_COOKIE} cookie; null when it has none. */
export function cookieToken(req: IncomingMessage): string | null {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === TOKEN_COOKIE) {
      const value = part.slice(eq + 1).trim();
      return value === '' ? null : value;
    }
  }
  return null;
}

/** Explains why jose refused a token, for the 401 message. */
function refusal(err: unknown): AuthenticationError {
  if (err instanceof AuthenticationError) return err;
  if (err instanceof joseErrors.JWTExpired) {
    return new AuthenticationError('The token has expired: get a new one', {
      cause: err,
      code: 'TOKEN_EXPIRED',
    });
  }
  const why =
    err instanceof joseErrors.JWSSignatureVerificationFailed
      ? 'its signature does not verify with the configured key'
      : err instanceof joseErrors.JOSEAlgNotAllowed
        ? 'its algorithm is not accepted (unsigned "none" tokens never are)'
        : err instanceof joseErrors.JWTClaimValidationFailed
          ? `its "${err.claim}" claim is not acceptable (${err.reason})`
          : err instanceof joseErrors.JWKSNoMatchingKey
            ? 'no key of the JWKS matches its "kid"'
            : err instanceof joseErrors.JOSEError
              ? `it is malformed (${err.message})`
              : `it could not be checked (${err instanceof Error ? err.message : String(err)})`;
  return new AuthenticationError(`The token was refused: ${why}`, { cause: err });
}

/**
 * Turns verified claims into a principal, at `now` (epoch ms) with `skewMs` of clock tolerance.
 * The subject is required: rate limits, stream limits and revocation all go by it.
 */
function principalOf(payload: JWTPayload, now: number, skewMs: number): Principal {
  const bad = (claim: string, expected: string) =>
    new AuthenticationError(`The token was refused: its "${claim}" claim must be ${expected}`);
  const { sub, jti, iat, exp } = payload;
  if (sub === undefined) {
    throw new AuthenticationError(
      'The token was refused: it has no "sub" claim; the issuer must name the caller in "sub" ' +
        '(`tidings token --sub <subject>` does)',
    );
  }
  if (typeof sub !== 'string' || sub === '') throw bad('sub', 'a non-empty string');
  // A token issued "later" would outlive a revocation of its subject made before that time.
  if (typeof iat === 'number' && iat * 1000 > now + skewMs) {
    throw new AuthenticationError(
      `The token was refused: its "iat" claim is ${new Date(iat * 1000).toISOString()}, in the ` +
        `future by more than the ${skewMs / 1000}s clock skew allowed; fix the issuer's clock ` +
        'and mint a new token',
    );
  }
  const rawScope = payload.scope;
  const scopeList =
    rawScope === undefined
      ? []
      : typeof rawScope === 'string'
        ? rawScope.split(' ').filter((s) => s !== '')
        : Array.isArray(rawScope) && rawScope.every((s) => typeof s === 'string')
          ? (rawScope as string[])
          : null;
  if (scopeList === null) throw bad('scope', 'a space-separated string');
  const scopes = new Set<Scope>(
    scopeList.filter((s): s is Scope => (SCOPES as readonly string[]).includes(s)),
  );
  const rawInboxes = payload.inboxes;
  if (
    rawInboxes !== undefined &&
    !(Array.isArray(rawInboxes) && rawInboxes.every((i) => typeof i === 'string' && i !== ''))
  ) {
    throw bad('inboxes', 'an array of inbox names (a trailing * for prefixes)');
  }
  const clientId = payload.client_id ?? sub;
  if (typeof clientId !== 'string' || clientId === '') {
    throw bad('client_id', 'a non-empty string');
  }
  return {
    subject: sub,
    clientId,
    scopes,
    inboxes: rawInboxes === undefined ? null : (rawInboxes as string[]),
    tokenId: typeof jti === 'string' && jti !== '' ? jti : null,
    issuedAt: typeof iat === 'number' ? iat * 1000 : null,
    expiresAt: typeof exp === 'number' ? exp * 1000 : null,
  };
}

/**
 * Creates the authenticator of an instance. Revocations are read from `store` on every
 * authentication, so a revocation made on any instance holds at once everywhere.
 * @throws ConfigError when the configured key cannot be used.
 */
export function createAuthenticator(
  config: TidingsConfig,
  store: EventStore,
  options: {
    /**
     * Least time between two fetches of the JWKS, ms: a token with an unknown `kid` refetches it
     * at most this often, so forged `kid`s cannot flood the issuer.
     * @default 30000
     */
    jwksCooldownMs?: number;
  } = {},
): Authenticator {
  if (config.auth === 'none') {
    return {
      required: false,
      authenticate: async () => UNAUTHENTICATED_ADMIN,
      verify: async () => UNAUTHENTICATED_ADMIN,
    };
  }
  const revocations = requireCapability(store, 'revocations', 'TIDINGS_AUTH=jwt');
  let key: VerifyKey;
  let algorithms: string[] | undefined;
  if (config.jwtSecret !== null) {
    key = new TextEncoder().encode(config.jwtSecret);
    algorithms = ['HS256'];
  } else if (config.jwtPublicKey !== null) {
    const publicKey = loadPublicKey(config.jwtPublicKey);
    key = publicKey;
    algorithms = algorithmsFor(publicKey);
  } else if (config.jwksUrl !== null) {
    // Cached; an unknown `kid` refetches the set (at most once per cooldown).
    key = createRemoteJWKSet(new URL(config.jwksUrl), {
      cacheMaxAge: 10 * 60_000,
      cooldownDuration: options.jwksCooldownMs ?? 30_000,
      timeoutDuration: 5_000,
    });
  } else {
    throw new ConfigError(
      'TIDINGS_AUTH=jwt needs a key: set TIDINGS_JWT_SECRET, TIDINGS_JWT_PUBLIC_KEY or TIDINGS_JWKS_URL',
    );
  }

  async function verify(token: string): Promise<Principal> {
    let principal: Principal;
    try {
      const { payload } = await jwtVerify(token, key, {
        algorithms,
        issuer: config.jwtIssuer ?? undefined,
        audience: config.jwtAudience ?? undefined,
        clockTolerance: Math.round(config.jwtClockSkewMs / 1000),
      });
      principal = principalOf(payload, Date.now(), config.jwtClockSkewMs);
    } catch (err) {
      throw refusal(err);
    }
    const revoked = await revocations.lookup(principal.tokenId, principal.subject);
    const subjectRevoked =
      revoked.subject !== null &&
      (principal.issuedAt === null || principal.issuedAt <= revoked.subject);
    if (revoked.token !== null || subjectRevoked) {
      throw new AuthenticationError('The token was refused: it has been revoked', {
        code: 'TOKEN_REVOKED',
      });
    }
    return principal;
  }

  return {
    required: true,
    verify,
    async authenticate(req) {
      const token = tokenOf(req);
      if (token === null) {
        throw new AuthenticationError(
          `No token: send "Authorization: Bearer <token>" (or the ${TOKEN_COOKIE} cookie from a browser); ` +
            '`tidings token` mints one for testing',
        );
      }
      return verify(token);
    },
  };
}
