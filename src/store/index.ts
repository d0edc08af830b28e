/**
 * Store selection: turns a `TIDINGS_STORE` URL into an {@link EventStore}. Adapters are loaded on
 * first use, so a deployment pays only for the backend it runs.
 */
import { ConfigError } from '../errors.js';
import type { ClaimMode, EventStore, StoreCapability, StoreClaim } from './types.js';

export type {
  AppendOutcome,
  ClaimMode,
  EventOrder,
  EventStore,
  Page,
  PageQuery,
  StoreCapability,
  StoreClaim,
  StoreFlags,
  StoreRetention,
  StoreRevocations,
} from './types.js';

/** The file of a `sqlite:` store URL (or `:memory:`); `null` when `url` is not one. */
function sqlitePath(url: string): string | null {
  if (!/^sqlite:/i.test(url)) return null;
  let path = url.slice('sqlite:'.length);
  if (path.startsWith('//')) path = path.slice(2);
  return path === '' ? null : path;
}

/**
 * Opens the store named by `url`:
 * - `sqlite:./relative/file.db`, `sqlite:/absolute/file.db` (also `sqlite:///absolute/file.db`)
 *   or `sqlite::memory:`;
 * - `postgres://user:password@host:5432/database` (or `postgresql://…`): the tables live in the
 *   schema `public`, or in the one named by `?schema=name` (created when missing); `?pool=n` sets
 *   the most connections (10 by default); other parameters go to node-postgres. The schema is
 *   migrated on open.
 * @throws ConfigError for an unsupported scheme or a malformed PostgreSQL URL.
 * @throws StoreError when the store cannot be opened (unreachable server, refused login, …).
 */
export async function createStore(
  url: string,
  options: {
    /** Deadline of each call to a PostgreSQL store, ms. @default 5000 */
    timeoutMs?: number;
  } = {},
): Promise<EventStore> {
  const trimmed = url.trim();
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(trimmed)?.[1]?.toLowerCase();
  if (scheme === 'postgres' || scheme === 'postgresql') {
    const { createPostgresStore } = await import('./postgres.js');
    return createPostgresStore({ url: trimmed, timeoutMs: options.timeoutMs });
  }
  const path = sqlitePath(trimmed);
  if (path !== null) {
    const { createSqliteStore } = await import('./sqlite.js');
    return createSqliteStore({ path });
  }
  throw new ConfigError(
    `TIDINGS_STORE: unsupported store URL "${url}": use sqlite:<path>, sqlite::memory: or ` +
      'postgres://user:password@host:5432/database',
  );
}

/**
 * Claims the store named by `url` (already opened with {@link createStore}) for a server, in
 * `mode`. An in-memory SQLite store belongs to its process: its claim always holds.
 * @throws ConfigError when another server holds the store in a mode that excludes this one; the
 * message says which setting to change.
 */
export async function claimStore(
  url: string,
  mode: ClaimMode,
  options: {
    /**
     * Deadline of each call on a PostgreSQL claim's connection, ms.
     * @default 5000
     */
    timeoutMs?: number;
  } = {},
): Promise<StoreClaim> {
  const trimmed = url.trim();
  const path = sqlitePath(trimmed);
  if (path === ':memory:') return { check() {}, release: () => Promise.resolve() };
  if (path !== null) {
    const { claimSqlite } = await import('./sqlite.js');
    return claimSqlite(path, mode);
  }
  const { claimPostgres } = await import('./postgres.js');
  return claimPostgres(trimmed, mode, options.timeoutMs);
}

/**
 * The capability `capability` of `store`, for a caller that cannot work without it (`needs` says
 * which, e.g. `TIDINGS_RETENTION`).
 * @throws ConfigError when the store lacks it: naming the store, the capability and the setting,
 * and what to do instead.
 */
export function requireCapability<C extends StoreCapability>(
  store: EventStore,
  capability: C,
  needs: string,
): NonNullable<EventStore[C]> {
  const found = store[capability];
  if (found) return found as NonNullable<EventStore[C]>;
  throw new ConfigError(
    `[store:${store.kind}] ${needs} needs a store with the ${capability} capability, and this ` +
      `one has none: use a sqlite: or postgres:// store, or ${CAPABILITY_HINTS[capability]}`,
  );
}

/** What to change when a capability is missing. */
const CAPABILITY_HINTS: Record<StoreCapability, string> = {
  retention: 'keep every event (retentionMs: Infinity)',
  revocations: 'run without TIDINGS_AUTH=jwt',
};
