/**
 * Store selection: turns a `TIDINGS_STORE` URL into an {@link EventStore}. Adapters are loaded on
 * first use, so a deployment pays only for the backend it runs.
 */
import { ConfigError } from '../errors.js';
import type { EventStore } from './types.js';

export type { AppendOutcome, EventOrder, EventStore, Page, PageQuery } from './types.js';

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
  if (scheme === 'sqlite') {
    let path = trimmed.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2);
    if (path !== '') {
      const { createSqliteStore } = await import('./sqlite.js');
      return createSqliteStore({ path });
    }
  }
  throw new ConfigError(
    `TIDINGS_STORE: unsupported store URL "${url}": use sqlite:<path>, sqlite::memory: or ` +
      'postgres://user:password@host:5432/database',
  );
}
