/**
 * Token verification: HS256, PEM public keys and JWKS (cached, refetched for an unknown kid),
 * issuer, audience, clock skew, revocation; and every kind of bad token refused with a clear 401.
 */
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAuthenticator, tokenOf } from '../../src/auth/jwt.js';
import { DEFAULT_CONFIG, type TidingsConfig } from '../../src/config.js';
import { AuthenticationError, ConfigError } from '../../src/errors.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import type { FullEventStore } from '../../src/store/types.js';
import { hs256, SECRET, unsigned } from './tokens.js';

let store: FullEventStore;
beforeEach(() => {
  store = createSqliteStore({ path: ':memory:' });
});
afterEach(() => store.close());

const config = (over: Partial<TidingsConfig>): TidingsConfig => ({
  ...DEFAULT_CONFIG,
  auth: 'jwt',
  ...over,
});

/** A request with these headers, as the authenticator sees it. */
const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;

async function refusal(promise: Promise<unknown>): Promise<AuthenticationError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AuthenticationError);
  return err as AuthenticationError;
}

describe('HS256', () => {
  it('should turn the claims into a principal', async () => {
    const auth = createAuthenticator(config({ jwtSecret: SECRET }), store);
    const token = await hs256({
      sub: 'svc-1',
      scope: 'events:read events:publish unknown:scope',
      inboxes: ['pdfm', 'hosts-*'],
      client_id: 'host-7',
      jti: 'token-1',
    });
    const p = await auth.authenticate(req({ authorization: `Bearer ${token}` }));
    expect(p).toMatchObject({
      subject: 'svc-1',
      clientId: 'host-7',
      inboxes: ['pdfm', 'hosts-*'],
      tokenId: 'token-1',
    });
    expect([...p.scopes].sort()).toEqual(['events:publish', 'events:read']);
    expect(p.expiresAt).toBeGreaterThan(Date.now());
    // client_id defaults to sub; no inboxes claim means every inbox.
    const plain = await auth.verify(await hs256({ sub: 'svc-2' }));
    expect(plain).toMatchObject({ clientId: 'svc-2', inboxes: null, scopes: new Set() });
  });

  it('should take the token from the tidings_token cookie, never from the query string', async () => {
    const auth = createAuthenticator(config({ jwtSecret: SECRET }), store);
    const token = await hs256({ sub: 'browser' });
    const p = await auth.authenticate(req({ cookie: `a=b; tidings_token=${token}; c=d` }));
    expect(p.subject).toBe('browser');
    const none = await refusal(
      auth.authenticate({ headers: {}, url: `/graphql/stream?token=${token}` } as IncomingMessage),
    );
    expect(none.message).toMatch(/No token: send "Authorization: Bearer <token>"/);
    expect(() => tokenOf(req({ authorization: `Basic ${token}` }))).toThrow(/Bearer <token>/);
    expect(() => tokenOf(req({ cookie: 'tidings_token=%E0%A4%A' }))).toThrow(/not validly encoded/);
  });

  it.each([
    [
      'unsigned (alg none)',
      async () => unsigned({ sub: 'x', scope: 'events:admin' }),
      /algorithm is not accepted/,
    ],
    [
      'wrongly signed',
      async () => hs256({ sub: 'x' }, { secret: 'another-secret-of-enough-length-123456' }),
      /signature does not verify/,
    ],
    [
      'expired',
      async () => hs256({ sub: 'x' }, { expiresIn: Math.floor(Date.now() / 1000) - 3600 }),
      /has expired/,
    ],
    ['malformed', async () => 'not.a.jwt', /malformed/],
    [
      'with a bad inboxes claim',
      async () => hs256({ sub: 'x', inboxes: 'pdfm' as unknown as string[] }),
      /"inboxes" claim must be an array/,
    ],
    ['without a subject', async () => hs256({ scope: 'events:read' }), /no "sub" claim/],
    ['with an empty subject', async () => hs256({ sub: '' }), /"sub" claim must be a non-empty/],
    [
      'issued in the future, beyond the clock skew',
      async () => hs256({ sub: 'x' }, { issuedAt: Math.floor(Date.now() / 1000) + 120 }),
      /"iat" claim .* in the future by more than the 30s clock skew/,
    ],
  ])('should refuse a token that is %s', async (_what, make, message) => {
    const auth = createAuthenticator(config({ jwtSecret: SECRET }), store);
    const err = await refusal(auth.verify(await make()));
    expect(err.message).toMatch(message);
  });

  it('should call an expired token TOKEN_EXPIRED, and tolerate the configured clock skew', async () => {
    const expiredAgo = (s: number) => Math.floor(Date.now() / 1000) - s;
    const strict = createAuthenticator(config({ jwtSecret: SECRET, jwtClockSkewMs: 0 }), store);
    const err = await refusal(
      strict.verify(await hs256({ sub: 'x' }, { expiresIn: expiredAgo(5) })),
    );
    expect(err.code).toBe('TOKEN_EXPIRED');
    const lenient = createAuthenticator(
      config({ jwtSecret: SECRET, jwtClockSkewMs: 30_000 }),
      store,
    );
    await expect(
      lenient.verify(await hs256({ sub: 'x' }, { expiresIn: expiredAgo(5) })),
    ).resolves.toMatchObject({ subject: 'x' });
  });

  it('should check issuer and audience when configured', async () => {
    const auth = createAuthenticator(
      config({ jwtSecret: SECRET, jwtIssuer: 'https://idp.example', jwtAudience: 'tidings' }),
      store,
    );
    const good = await hs256({ sub: 'x', iss: 'https://idp.example', aud: 'tidings' });
    await expect(auth.verify(good)).resolves.toMatchObject({ subject: 'x' });
    const wrongIss = await hs256({ sub: 'x', iss: 'https://evil.example', aud: 'tidings' });
    expect((await refusal(auth.verify(wrongIss))).message).toMatch(/"iss" claim/);
    const noAud = await hs256({ sub: 'x', iss: 'https://idp.example' });
    expect((await refusal(auth.verify(noAud))).message).toMatch(/"aud" claim/);
  });

  it('should refuse revoked tokens: by jti, and a subject’s tokens issued until the revocation', async () => {
    const auth = createAuthenticator(config({ jwtSecret: SECRET }), store);
    const now = Math.floor(Date.now() / 1000);
    const byJti = await hs256({ sub: 'a', jti: 'revoked-one' });
    const other = await hs256({ sub: 'a', jti: 'kept' });
    await store.revocations.revoke({ kind: 'token', value: 'revoked-one', at: Date.now() });
    const err = await refusal(auth.verify(byJti));
    expect(err).toMatchObject({ code: 'TOKEN_REVOKED' });
    await expect(auth.verify(other)).resolves.toMatchObject({ tokenId: 'kept' });

    const old = await hs256({ sub: 'b' }, { issuedAt: now - 60 });
    await store.revocations.revoke({ kind: 'subject', value: 'b', at: (now - 30) * 1000 });
    expect((await refusal(auth.verify(old))).code).toBe('TOKEN_REVOKED');
    // Minted after the revocation: accepted.
    await expect(auth.verify(await hs256({ sub: 'b' }, { issuedAt: now }))).resolves.toMatchObject({
      subject: 'b',
    });
  });
});

describe('PEM public keys', () => {
  it.each([
    ['RSA', 'rsa', 'RS256'],
    ['EC P-256', 'ec', 'ES256'],
    ['Ed25519', 'ed25519', 'EdDSA'],
  ] as const)('should verify %s signatures', async (_name, type, alg) => {
    const { publicKey, privateKey } =
      type === 'rsa'
        ? generateKeyPairSync('rsa', { modulusLength: 2048 })
        : type === 'ec'
          ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
          : generateKeyPairSync('ed25519');
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const auth = createAuthenticator(config({ jwtPublicKey: pem }), store);
    const token = await new SignJWT({ sub: 'signed', scope: 'events:read' })
      .setProtectedHeader({ alg })
      .setExpirationTime('1h')
      .sign(privateKey);
    await expect(auth.verify(token)).resolves.toMatchObject({ subject: 'signed' });
    // An HS256 token made with the public key as its secret: the classic confusion attack.
    const confused = await hs256({ sub: 'attacker', scope: 'events:admin' }, { secret: pem });
    expect((await refusal(auth.verify(confused))).message).toMatch(/algorithm is not accepted/);
  });

  it('should refuse to start with a key that is not a PEM public key', () => {
    expect(() => createAuthenticator(config({ jwtPublicKey: '/no/such/file.pem' }), store)).toThrow(
      ConfigError,
    );
    expect(() =>
      createAuthenticator(
        config({ jwtPublicKey: '-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----' }),
        store,
      ),
    ).toThrow(/not a PEM public key/);
  });
});

describe('JWKS', () => {
  let server: Server;
  let keys: JWK[] = [];
  let fetches = 0;
  afterAll(() => new Promise<void>((resolve) => server?.close(() => resolve())));

  async function jwksUrl(): Promise<string> {
    server = createServer((_req, res) => {
      fetches++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  }

  async function signer(kid: string) {
    const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
    return {
      jwk,
      sign: (sub: string) =>
        new SignJWT({ sub })
          .setProtectedHeader({ alg: 'ES256', kid })
          .setExpirationTime('1h')
          .sign(privateKey),
    };
  }

  it('should cache the key set and refetch it once for an unknown kid', async () => {
    const first = await signer('k1');
    keys = [first.jwk];
    const auth = createAuthenticator(config({ jwksUrl: await jwksUrl() }), store, {
      jwksCooldownMs: 100,
    });
    await expect(auth.verify(await first.sign('a'))).resolves.toMatchObject({ subject: 'a' });
    await expect(auth.verify(await first.sign('b'))).resolves.toMatchObject({ subject: 'b' });
    expect(fetches).toBe(1);

    // The issuer rotates: a token with a new kid makes the set be fetched again.
    const second = await signer('k2');
    keys = [first.jwk, second.jwk];
    await new Promise((resolve) => setTimeout(resolve, 150));
    await expect(auth.verify(await second.sign('c'))).resolves.toMatchObject({ subject: 'c' });
    expect(fetches).toBe(2);

    const stranger = await signer('k3');
    expect((await refusal(auth.verify(await stranger.sign('d')))).message).toMatch(
      /no key of the JWKS matches/,
    );
  });
});
