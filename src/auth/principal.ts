/**
 * Who is calling and what they may do: scopes, the inboxes they may read and publish to, and the
 * client whose targeted events are theirs. Every permission check of Tidings goes through here.
 */
import { ForbiddenError } from '../errors.js';
import { SYSTEM_INBOX, type Visibility } from '../events/types.js';

/** The scopes a token can carry (space separated in its `scope` claim). */
export const SCOPES = ['events:publish', 'events:read', 'events:admin'] as const;

/** One scope. `events:admin` implies the other two. */
export type Scope = (typeof SCOPES)[number];

/** An authenticated caller. */
export interface Principal {
  /** The token's `sub`; null when auth is off. */
  subject: string | null;
  /** The client whose targeted events this caller may read (`client_id`, else `sub`). */
  clientId: string | null;
  scopes: ReadonlySet<Scope>;
  /** Inbox names and `prefix*` patterns the caller may read and publish to; null: every inbox. */
  inboxes: readonly string[] | null;
  /** The token's `jti`, used for revocation; null when it has none. */
  tokenId: string | null;
  /** When the token was issued (`iat`), epoch ms; null when unknown. */
  issuedAt: number | null;
  /** When the token expires (`exp`), epoch ms; null when it does not. */
  expiresAt: number | null;
}

/** The caller when `TIDINGS_AUTH=none`: every scope, admin included, every inbox. */
export const UNAUTHENTICATED_ADMIN: Principal = Object.freeze({
  subject: null,
  clientId: null,
  scopes: new Set<Scope>(SCOPES),
  inboxes: null,
  tokenId: null,
  issuedAt: null,
  expiresAt: null,
});

/** A caller with no permission at all (never given to a request that authenticated). */
export const NOBODY: Principal = Object.freeze({
  subject: null,
  clientId: null,
  scopes: new Set<Scope>(),
  inboxes: [],
  tokenId: null,
  issuedAt: null,
  expiresAt: null,
});

/** Whether the caller has `scope` (admins have every scope). */
export function hasScope(principal: Principal, scope: Scope): boolean {
  return principal.scopes.has(scope) || principal.scopes.has('events:admin');
}

/** Whether the caller is an admin. */
export function isAdmin(principal: Principal): boolean {
  return principal.scopes.has('events:admin');
}

/** A short description of the caller for messages and logs. */
export function describePrincipal(principal: Principal): string {
  return principal.subject === null ? 'the caller' : `subject "${principal.subject}"`;
}

/** Throws a {@link ForbiddenError} unless the caller has `scope`. */
export function requireScope(principal: Principal, scope: Scope, action: string): void {
  if (hasScope(principal, scope)) return;
  throw new ForbiddenError(
    `${describePrincipal(principal)} may not ${action}: the token lacks the scope "${scope}"`,
    { details: { missingScope: scope } },
  );
}

/** Whether the inbox name `inbox` matches one of `patterns` (names, or prefixes ending in `*`). */
export function inboxAllowed(patterns: readonly string[] | null, inbox: string): boolean {
  if (patterns === null) return true;
  return patterns.some((p) => (p.endsWith('*') ? inbox.startsWith(p.slice(0, -1)) : p === inbox));
}

/**
 * Whether everything `requested` (a name or a `prefix*` pattern) can match lies inside `patterns`:
 * a name must be allowed; a pattern must be narrower than an allowed pattern.
 */
export function inboxCovered(patterns: readonly string[] | null, requested: string): boolean {
  if (patterns === null) return true;
  if (!requested.endsWith('*')) return inboxAllowed(patterns, requested);
  const prefix = requested.slice(0, -1);
  return patterns.some((p) => p.endsWith('*') && prefix.startsWith(p.slice(0, -1)));
}

/** Throws a {@link ForbiddenError} naming the first inbox the caller may not use. */
export function requireInboxes(
  principal: Principal,
  inboxes: readonly string[],
  action: 'read' | 'publish to',
): void {
  for (const inbox of inboxes) {
    if (inbox === SYSTEM_INBOX && !isAdmin(principal)) {
      throw new ForbiddenError(
        `${describePrincipal(principal)} may not ${action} inbox "${SYSTEM_INBOX}": it holds ` +
          "Tidings' own events, for admins (events:admin) only",
        { details: { inbox } },
      );
    }
    const ok =
      action === 'read'
        ? inboxCovered(principal.inboxes, inbox)
        : inboxAllowed(principal.inboxes, inbox);
    if (!ok) {
      throw new ForbiddenError(
        `${describePrincipal(principal)} may not ${action} inbox "${inbox}": the token's inboxes ` +
          `claim allows only ${JSON.stringify(principal.inboxes)}`,
        { details: { inbox } },
      );
    }
  }
}

/**
 * Throws a {@link ForbiddenError} when a non-admin asks for another client's targeted events
 * (or for any client's, without a client id of its own).
 */
export function requireClient(principal: Principal, clientId: string | null): void {
  if (clientId === null || isAdmin(principal) || clientId === principal.clientId) return;
  throw new ForbiddenError(
    `${describePrincipal(principal)} may not read the events of client "${clientId}": a stream ` +
      `may ask only for the caller's own client id (${JSON.stringify(principal.clientId)}), ` +
      'unless the token has events:admin',
    { details: { clientId } },
  );
}

/** What the caller may read: its inboxes, and targeted events of its own client (all if admin). */
export function visibilityOf(principal: Principal): Visibility {
  const admin = isAdmin(principal);
  return {
    inboxes: principal.inboxes,
    clients: admin ? 'all' : principal.clientId,
    ...(admin ? {} : { hiddenInboxes: [SYSTEM_INBOX] }),
  };
}
