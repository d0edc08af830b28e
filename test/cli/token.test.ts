import { decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { tcli } from './tcli.js';

const SECRET = 'a-test-secret-of-at-least-32-bytes!!';
const key = new TextEncoder().encode(SECRET);

function capture() {
  let out = '';
  let err = '';
  return {
    io: { out: (t: string) => (out += t), err: (t: string) => (err += t) },
    out: () => out,
    err: () => err,
  };
}

/** Runs `tidings token ...args` in process; expects success and returns the verified claims. */
async function mint(
  args: string[],
  env: Record<string, string> = { TIDINGS_JWT_SECRET: SECRET },
  verifyWith: Uint8Array = key,
): Promise<{ token: string; claims: JWTPayload }> {
  const c = capture();
  const code = await main(['token', ...args], c.io, env);
  expect(c.err()).toBe('');
  expect(code).toBe(0);
  expect(c.out()).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
  const token = c.out().trimEnd();
  const { payload } = await jwtVerify(token, verifyWith, { algorithms: ['HS256'] });
  return { token, claims: payload };
}

describe('tidings token', () => {
  it('should mint an HS256 token with the defaults: events:read, every inbox, 1h, a random jti', async () => {
    const before = Math.floor(Date.now() / 1000);
    const { token, claims } = await mint(['--sub', 'alice']);
    const after = Math.floor(Date.now() / 1000);
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'HS256', typ: 'JWT' });
    expect(claims.sub).toBe('alice');
    expect(claims.scope).toBe('events:read');
    expect(claims).not.toHaveProperty('inboxes');
    expect(claims).not.toHaveProperty('client_id');
    expect(claims).not.toHaveProperty('iss');
    expect(claims).not.toHaveProperty('aud');
    expect(claims.jti).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    expect(claims.iat).toBeGreaterThanOrEqual(before);
    expect(claims.iat).toBeLessThanOrEqual(after);
    expect((claims.exp as number) - (claims.iat as number)).toBe(3600);
    const again = await mint(['--sub', 'alice']);
    expect(again.claims.jti).not.toBe(claims.jti);
  });

  it('should carry every claim given by flags', async () => {
    const { claims } = await mint([
      '--sub',
      'svc-1',
      '--scope',
      '  events:publish   events:read events:admin ',
      '--inboxes',
      'pdfm, alerts ,vm.*',
      '--client-id',
      'host-7',
      '--ttl',
      '15m',
      '--issuer',
      'https://issuer.example',
      '--audience',
      'tidings-api',
      '--jti',
      'token-42',
    ]);
    expect(claims).toMatchObject({
      sub: 'svc-1',
      scope: 'events:publish events:read events:admin',
      inboxes: ['pdfm', 'alerts', 'vm.*'],
      client_id: 'host-7',
      iss: 'https://issuer.example',
      aud: 'tidings-api',
      jti: 'token-42',
    });
    expect((claims.exp as number) - (claims.iat as number)).toBe(15 * 60);
  });

  it.each([
    ['30d', 30 * 86_400],
    ['12h', 12 * 3_600],
    ['90s', 90],
    ['5000ms', 5],
  ])('should set exp - iat to the ttl %s', async (ttl, seconds) => {
    const { claims } = await mint(['--sub', 'a', '--ttl', ttl]);
    expect((claims.exp as number) - (claims.iat as number)).toBe(seconds);
  });

  it('should take the issuer and audience from the environment unless flags override them', async () => {
    const env = {
      TIDINGS_JWT_SECRET: SECRET,
      TIDINGS_JWT_ISSUER: 'env-issuer',
      TIDINGS_JWT_AUDIENCE: 'env-audience',
    };
    const fromEnv = await mint(['--sub', 'a'], env);
    expect(fromEnv.claims).toMatchObject({ iss: 'env-issuer', aud: 'env-audience' });
    const fromFlags = await mint(['--sub', 'a', '--issuer', 'i2', '--audience', 'a2'], env);
    expect(fromFlags.claims).toMatchObject({ iss: 'i2', aud: 'a2' });
    const verified = await jwtVerify(fromEnv.token, key, {
      issuer: 'env-issuer',
      audience: 'env-audience',
    });
    expect(verified.payload.sub).toBe('a');
  });

  it('should sign with --secret over TIDINGS_JWT_SECRET', async () => {
    const other = 'another-secret-that-is-long-enough-0123';
    const { token } = await mint(
      ['--sub', 'a', '--secret', other],
      { TIDINGS_JWT_SECRET: SECRET },
      new TextEncoder().encode(other),
    );
    await expect(jwtVerify(token, key)).rejects.toThrow(/signature/);
  });

  it('should print its usage with --help and exit 0', async () => {
    const c = capture();
    expect(await main(['token', '--help'], c.io, {})).toBe(0);
    for (const flag of ['--sub', '--scope', '--inboxes', '--client-id', '--ttl', '--jti']) {
      expect(c.out()).toContain(flag);
    }
    expect(c.out()).toContain('TIDINGS_JWT_SECRET');
    const top = capture();
    expect(await main(['--help'], top.io, {})).toBe(0);
    expect(top.out()).toMatch(/^ {2}token /m);
  });

  const withSecret = { TIDINGS_JWT_SECRET: SECRET };
  it.each<[string, string[], Record<string, string>, RegExp]>([
    ['no secret', ['--sub', 'a'], {}, /set TIDINGS_JWT_SECRET or pass --secret/],
    ['an empty secret', ['--sub', 'a'], { TIDINGS_JWT_SECRET: '' }, /TIDINGS_JWT_SECRET/],
    [
      'a short secret',
      ['--sub', 'a'],
      { TIDINGS_JWT_SECRET: 'x'.repeat(31) },
      /31 bytes: HS256 needs at least 32/,
    ],
    ['a short --secret', ['--sub', 'a', '--secret', 'short'], withSecret, /5 bytes/],
    ['no subject', [], withSecret, /--sub <subject> is required/],
    ['an empty subject', ['--sub', ''], withSecret, /--sub <subject> is required/],
    [
      'an unknown scope',
      ['--sub', 'a', '--scope', 'events:read events:write'],
      withSecret,
      /unknown scope "events:write" in --scope/,
    ],
    [
      'a comma-separated scope',
      ['--sub', 'a', '--scope', 'events:read,events:publish'],
      withSecret,
      /unknown scope "events:read,events:publish"/,
    ],
    ['an empty scope', ['--sub', 'a', '--scope', '  '], withSecret, /--scope is empty/],
    ['no inbox', ['--sub', 'a', '--inboxes', ' , '], withSecret, /--inboxes names no inbox/],
    [
      'a bad inbox',
      ['--sub', 'a', '--inboxes', 'ok,two words'],
      withSecret,
      /bad inbox "two words" in --inboxes/,
    ],
    ['a star inside an inbox', ['--sub', 'a', '--inboxes', 'a*b'], withSecret, /bad inbox "a\*b"/],
    ['an empty client id', ['--sub', 'a', '--client-id', ''], withSecret, /--client-id is empty/],
    ['an empty jti', ['--sub', 'a', '--jti', ''], withSecret, /--jti is empty/],
    [
      'a bad ttl',
      ['--sub', 'a', '--ttl', 'forever'],
      withSecret,
      /--ttl="forever" is invalid: expected a duration/,
    ],
    ['a zero ttl', ['--sub', 'a', '--ttl', '0s'], withSecret, /--ttl="0s" is invalid/],
    ['a ttl in part of a second', ['--sub', 'a', '--ttl', '1500ms'], withSecret, /whole seconds/],
    [
      'an unknown flag',
      ['--sub', 'a', '--colour', 'blue'],
      withSecret,
      /Unknown option '--colour'/,
    ],
    ['a flag without its value', ['--sub'], withSecret, /--sub/],
    ['a positional argument', ['--sub', 'a', 'extra'], withSecret, /Unexpected argument 'extra'/],
  ])('should refuse %s with one line and exit 2', async (_name, args, env, message) => {
    const c = capture();
    expect(await main(['token', ...args], c.io, env)).toBe(2);
    expect(c.out()).toBe('');
    expect(c.err()).toMatch(/^tidings token: /);
    expect(c.err()).toMatch(message);
    expect(c.err().trim().split('\n')).toHaveLength(1);
  });

  it('should print only the token on stdout from a real process, and exit 2 on a usage error', async () => {
    const ok = tcli(['token', '--sub', 'proc', '--scope', 'events:admin'], {
      TIDINGS_JWT_SECRET: SECRET,
    });
    expect(await ok.exited).toBe(0);
    expect(ok.stderr()).toBe('');
    expect(ok.stdout()).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const { payload } = await jwtVerify(ok.stdout().trim(), key);
    expect(payload).toMatchObject({ sub: 'proc', scope: 'events:admin' });

    const bad = tcli(['token', '--sub', 'proc'], { TIDINGS_JWT_SECRET: '' });
    expect(await bad.exited).toBe(2);
    expect(bad.stdout()).toBe('');
    expect(bad.stderr().trim()).toMatch(
      /^tidings token: no signing secret: set TIDINGS_JWT_SECRET or pass --secret/,
    );
  });
});
