/**
 * Benchmark server process: the real Tidings server (`startServer`) on a durable SQLite file,
 * `<dir>/bench.db`, where `<dir>` is the temporary directory the parent passes as the first
 * argument (the parent removes it after killing this process).
 */
import { mkdtempSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../../cli/serve.js';
import { runChild } from './child.js';

runChild('tidings', async () => {
  const dir = process.argv[2] ?? mkdtempSync(join(tmpdir(), 'tidings-bench-'));
  const running = await startServer({
    port: 0,
    host: '127.0.0.1',
    store: `sqlite:${join(dir, 'bench.db')}`,
    logLevel: 'warn',
  });
  return (running.server.address() as AddressInfo).port;
});
