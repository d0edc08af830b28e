/** Test helpers: tokens signed the ways Tidings accepts, and ways it must refuse. */
import { SignJWT, type JWTPayload } from 'jose';

/** The HS256 secret of the test servers. */
export const SECRET = 'test-secret-that-is-long-enough-for-hs256!';

/** Server config for JWT auth with {@link SECRET}. */
export const JWT_CONFIG = { auth: 'jwt', jwtSecret: SECRET } as const;

/** Signs `claims` with HS256 and {@link SECRET} (or `secret`), valid for an hour by default. */
export async function hs256(
  claims: JWTPayload & { scope?: string; inboxes?: string[]; client_id?: string },
  options: { secret?: string; expiresIn?: string | number; issuedAt?: number } = {},
): Promise<string> {
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt(options.issuedAt)
    .setExpirationTime(options.expiresIn ?? '1h');
  return jwt.sign(new TextEncoder().encode(options.secret ?? SECRET));
}

/** A token with `alg: none`: header and payload, no signature. */
export function unsigned(claims: JWTPayload): string {
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
}

/** `Authorization` header for `token`. */
export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
