/**
 * The packages only some deployments need (`pg` for a PostgreSQL store, `ioredis` for a Redis
 * bus) are loaded with `import()` when that backend is first used, so the embedded default
 * (SQLite, memory bus) never loads them, and a deployment may leave out the ones it does not use.
 */
import { ConfigError } from './errors.js';

/** Error codes of a module that could not be found (ESM, then CommonJS inside a package). */
const NOT_FOUND = new Set(['ERR_MODULE_NOT_FOUND', 'MODULE_NOT_FOUND']);

/**
 * Loads the package `name` with `load` (`() => import('pg')`: a literal specifier keeps its
 * types); `needs` names the setting that wants it, e.g. `TIDINGS_STORE=postgres://…`.
 * @throws ConfigError when the package (or one of its own dependencies) is not installed, saying
 * how to install it; the error of the import is its cause. Other failures are thrown as they are.
 */
export async function importOptionalPackage<T>(
  name: string,
  load: () => Promise<T>,
  needs: string,
): Promise<T> {
  try {
    return await load();
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    if (typeof code !== 'string' || !NOT_FOUND.has(code)) throw err;
    throw new ConfigError(
      `${needs} needs the package "${name}", which cannot be loaded (${(err as Error).message}): ` +
        `install it with npm install ${name}`,
      { cause: err },
    );
  }
}
