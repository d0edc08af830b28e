/**
 * Benchmark server process: the real Tidings server (`startServer`) on a shared PostgreSQL store
 * and Redis bus, so that several of these processes act as instances of one deployment.
 *
 * The store URL is the first argument, or `TIDINGS_STORE`; the bus URL the second argument, or
 * `TIDINGS_BUS`. The store must be `postgres://…` (or `postgresql://…`) and the bus `redis://…`
 * (or `rediss://…`): anything else is refused, since an instance on a store of its own would not
 * see the others' events. Tidings creates the schema when missing; dropping it is the parent's job.
 */
import type { AddressInfo } from 'node:net';
import { startServer } from '../../cli/serve.js';
import { runChild } from './child.js';

runChild('tidings-shared', async () => {
  const store = process.argv[2] ?? process.env.TIDINGS_STORE ?? '';
  const bus = process.argv[3] ?? process.env.TIDINGS_BUS ?? '';
  if (!/^postgres(ql)?:\/\//i.test(store)) {
    throw new Error('the store must be a postgres:// URL (first argument or TIDINGS_STORE)');
  }
  if (!/^rediss?:\/\//i.test(bus)) {
    throw new Error('the bus must be a redis:// URL (second argument or TIDINGS_BUS)');
  }
  const running = await startServer({ port: 0, host: '127.0.0.1', store, bus, logLevel: 'warn' });
  return (running.server.address() as AddressInfo).port;
});
