/**
 * What every benchmark server process shares: it is forked by `src/bench/run.ts` with an IPC
 * channel, reports its port once it listens, and answers `{ type: 'memory' }` with its memory
 * (after two full collections) and CPU figures. It never exits by itself: the parent kills it at
 * the end of its run (or the child leaves when the parent is gone and the channel closes).
 */
import { openSync, readSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getHeapStatistics } from 'node:v8';

/** Messages the parent sends. */
export type ParentMessage = { type: 'memory' };

/** A memory and CPU reading of a server process. */
export interface ChildSnapshot {
  type: 'memory';
  /** `process.memoryUsage()` after two `global.gc()` calls. */
  memory: NodeJS.MemoryUsage;
  /** `process.cpuUsage()` when the message arrived, before the collections. */
  cpuBeforeGc: NodeJS.CpuUsage;
  /** `process.cpuUsage()` after the collections. */
  cpuAfterGc: NodeJS.CpuUsage;
  /** Whether `global.gc` was available (the child runs with `--expose-gc`). */
  gc: boolean;
  /**
   * `statm` when `process.memoryUsage()` failed (it opens a file, which fails once every file
   * descriptor holds a stream) and the figures come from `/proc/self/statm` and V8 instead.
   */
  source: 'memoryUsage' | 'statm';
}

/** Messages a server process sends. */
export type ChildMessage =
  | { type: 'ready'; port: number; pid: number }
  | { type: 'failed'; message: string }
  | ChildSnapshot;

function send(message: ChildMessage): void {
  // The channel may be gone already (parent exited): nothing to report to then.
  if (process.connected) process.send?.(message);
}

/**
 * `/proc/self/statm`, opened at start so that RSS stays readable when the process has no file
 * descriptor left (with tens of thousands of open streams), and the page size its counts are in.
 */
let statm: { fd: number; pageSize: number } | null = null;

function statmPages(fd: number): number {
  const buf = Buffer.alloc(128);
  const n = readSync(fd, buf, 0, buf.length, 0);
  return Number(buf.toString('latin1', 0, n).split(' ')[1]);
}

function openStatm(): void {
  try {
    const fd = openSync('/proc/self/statm', 'r');
    const ratio = process.memoryUsage().rss / statmPages(fd);
    // The nearest common page size to what the two readings imply.
    const pageSize = [4096, 16384, 65536].reduce((best, size) =>
      Math.abs(size - ratio) < Math.abs(best - ratio) ? size : best,
    );
    statm = { fd, pageSize };
  } catch {
    statm = null; // not Linux: process.memoryUsage() alone
  }
}

/** `process.memoryUsage()`, or the same figures from statm and V8 when it cannot open a file. */
function memory(): Pick<ChildSnapshot, 'memory' | 'source'> {
  try {
    return { memory: process.memoryUsage(), source: 'memoryUsage' };
  } catch (err) {
    if (!statm) throw err;
    const heap = getHeapStatistics();
    return {
      memory: {
        rss: statmPages(statm.fd) * statm.pageSize,
        heapTotal: heap.total_heap_size,
        heapUsed: heap.used_heap_size,
        external: heap.external_memory,
        arrayBuffers: 0,
      },
      source: 'statm',
    };
  }
}

/** Takes a reading for the parent: CPU, two full collections, then memory. */
function snapshot(): ChildSnapshot {
  const cpuBeforeGc = process.cpuUsage();
  const gc = globalThis.gc;
  if (gc) {
    gc();
    gc();
  }
  return {
    type: 'memory',
    cpuAfterGc: process.cpuUsage(),
    cpuBeforeGc,
    ...memory(),
    gc: gc !== undefined,
  };
}

/**
 * Runs a benchmark server process: calls `start` (which listens and resolves with the port),
 * reports the port to the parent, and answers memory requests until the parent kills it. A
 * failing `start` is reported as `{ type: 'failed' }`; the process then waits to be killed.
 */
export function runChild(name: string, start: () => Promise<number>): void {
  if (!process.send) {
    console.error(`[bench:${name}] this is a benchmark child: run it through npm run bench`);
    process.exitCode = 2;
    return;
  }
  openStatm();
  process.on('message', (message: ParentMessage) => {
    if (message.type !== 'memory') return;
    try {
      send(snapshot());
    } catch (err) {
      send({ type: 'failed', message: `[bench:${name}] memory reading failed: ${String(err)}` });
    }
  });
  // Orphaned (the parent died without killing us): leave rather than serve forever.
  process.on('disconnect', () => process.exit(0));
  start().then(
    (port) => send({ type: 'ready', port, pid: process.pid }),
    (err: unknown) =>
      send({
        type: 'failed',
        message: `[bench:${name}] start failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
      }),
  );
}

/**
 * Listens on 127.0.0.1 with a free port and the stream-friendly timeouts Tidings uses (no request
 * timeout, 5 s keep-alive), so the three servers differ only in what they do per request.
 */
export async function listenLocal(server: Server): Promise<number> {
  server.requestTimeout = 0;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}
