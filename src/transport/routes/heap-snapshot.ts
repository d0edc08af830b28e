/**
 * `POST /debug/heap-snapshot`: writes a V8 heap snapshot (the process pauses while it does) and
 * answers its path. Admins only with auth; loopback callers only without. At most one per
 * interval, and a bounded number of files in the directory.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';
import type { Logger } from 'pino';
import { HttpError } from '../../errors.js';
import { isLoopback, requireAdmin, sendJson, type Route } from './route.js';

/** Options of {@link heapSnapshotRoute}. */
export interface HeapSnapshotOptions {
  /**
   * Whether callers must authenticate (`TIDINGS_AUTH=jwt`): then admins may take a snapshot,
   * otherwise loopback callers.
   * @default false
   */
  authRequired?: boolean;
  /**
   * Where snapshots are written, read at each snapshot.
   * @default `TIDINGS_HEAP_DIR`, else the system's temporary directory
   */
  dir?: () => string;
  /**
   * Shortest time between two snapshots, ms; a request sooner gets 429.
   * @default 60000
   */
  intervalMs?: number;
  /**
   * Snapshots kept in the directory: the oldest are removed before a new one is written.
   * @default 3
   */
  kept?: number;
}

const defaultDir = () => process.env.TIDINGS_HEAP_DIR || tmpdir();

/** Heap snapshots written by this process, to keep their file names apart. */
let written = 0;

/** The file names of heap snapshots, which start with the time they were taken. */
const HEAP_SNAPSHOT_FILE = /^tidings-.*\.heapsnapshot$/;

/** Removes the oldest heap snapshots of `dir` so that at most `keep` remain. */
function prune(dir: string, keep: number, log: Logger): void {
  const files = readdirSync(dir)
    .filter((name) => HEAP_SNAPSHOT_FILE.test(name))
    .sort();
  for (const name of files.slice(0, Math.max(0, files.length - keep))) {
    try {
      rmSync(join(dir, name), { force: true });
      log.info({ path: join(dir, name) }, 'old heap snapshot removed');
    } catch (err) {
      log.warn({ err, path: join(dir, name) }, 'an old heap snapshot could not be removed');
    }
  }
}

/** Takes heap snapshots at `/debug/heap-snapshot`. */
export function heapSnapshotRoute(options: HeapSnapshotOptions = {}): Route {
  const dirOf = options.dir ?? defaultDir;
  const intervalMs = options.intervalMs ?? 60_000;
  const kept = options.kept ?? 3;
  /** When the last snapshot was started, ms since the epoch. */
  let last = -Infinity;

  return async ({ req, res, url, log, authenticate }) => {
    if (url.pathname !== '/debug/heap-snapshot') return false;
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      throw new HttpError(405, 'BAD_USER_INPUT', 'Take a heap snapshot with POST');
    }
    if (options.authRequired) requireAdmin(await authenticate(), 'A heap snapshot');
    else if (!isLoopback(req)) {
      throw new HttpError(
        403,
        'FORBIDDEN',
        'A heap snapshot may be taken only from this machine when auth is off (TIDINGS_AUTH=none)',
      );
    }
    const wait = last + intervalMs - Date.now();
    if (wait > 0) {
      const seconds = Math.ceil(wait / 1000);
      res.setHeader('retry-after', String(seconds));
      throw new HttpError(
        429,
        'RATE_LIMITED',
        `A heap snapshot was taken less than ${intervalMs} ms ago: take the next ` +
          `one in ${seconds} s (TIDINGS_HEAP_SNAPSHOT_INTERVAL)`,
      );
    }
    // No await from here on: writeHeapSnapshot blocks the process, so snapshots never overlap,
    // and a request arriving meanwhile finds this one's time and waits its turn.
    last = Date.now();
    const dir = dirOf();
    mkdirSync(dir, { recursive: true });
    prune(dir, kept - 1, log());
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const started = Date.now();
    const path = writeHeapSnapshot(
      join(dir, `tidings-${stamp}-${process.pid}-${++written}.heapsnapshot`),
    );
    log().info({ path, durationMs: Date.now() - started }, 'heap snapshot written');
    sendJson(res, 200, { path });
    return true;
  };
}
