/**
 * The instance's logger: pino, one JSON line per record on stdout, every line tagged
 * `service: tidings`. Requests and streams log through children carrying `reqId` or `streamId`.
 */
import { pino, type Logger } from 'pino';

/** Creates the logger of an instance at `level` (`TIDINGS_LOG_LEVEL`). */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'tidings' } });
}

/**
 * Changes the level of `logger` at run time (the `setLogLevel` mutation), logging the change at
 * `warn` so that it shows whatever the new level; returns the previous level.
 */
export function changeLogLevel(logger: Logger, level: string): string {
  const previous = logger.level;
  logger.level = level;
  logger.warn({ level, previous }, 'log level changed');
  return previous;
}
