/**
 * Store selection: turns a `TIDINGS_STORE` URL into an {@link EventStore}. Adapters are loaded on
 * first use, so a deployment pays only for the backend it runs.
 */
import { ConfigError } from '../errors.js';
import type { EventStore } from './types.js';

export type { AppendOutcome, EventOrder, EventStore, Page, PageQuery } from './types.js';

/**
 * Opens the store named by `url`: `sqlite:./relative/file.db`, `sqlite:/absolute/file.db` (also
 * `sqlite:///absolute/file.db`) or `sqlite::memory:`.
 * @throws ConfigError for a PostgreSQL URL (not available in this version) or any other scheme.
 * @throws StoreError when the store cannot be opened.
 */
export async function createStore(url: string): Promise<EventStore> {
  const trimmed = url.trim();
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(trimmed)?.[1]?.toLowerCase();
  if (scheme === 'postgres' || scheme === 'postgresql') {
    throw new ConfigError(
      'TIDINGS_STORE: the PostgreSQL store is not available in this version; use sqlite:<path>',
    );
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
    `TIDINGS_STORE: unsupported store URL "${url}": use sqlite:<path> or sqlite::memory:`,
  );
}
