/**
 * Helpers of the stall tests: a TCP proxy the test controls, in front of a real service (the
 * machine's PostgreSQL or Redis), to make that service stall without touching it: `stall()` keeps
 * every connection open (new ones are accepted too) but forwards no byte, as a frozen network or
 * server would; `resume()` forwards what was held, in order, then everything again. And what the
 * tests check of a stalled instance: `/readyz`.
 */
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { expect } from 'vitest';
import { within } from './process/tprocess.js';

/** Which bytes a stall holds: both directions, or only the service's answers. */
export type StallDirection = 'both' | 'answers';

/** A running proxy. */
export interface TProxy {
  /** The port it listens on, on 127.0.0.1. */
  readonly port: number;
  /** `url` with its host and port replaced by the proxy's. */
  via(url: string): string;
  /** Stops forwarding: `answers` holds only the bytes coming from the service. */
  stall(direction?: StallDirection): void;
  /** Forwards what was held, then everything. */
  resume(): void;
  /** Breaks every connection through it, as a network failure would; new ones are accepted. */
  cut(): void;
  /** Closes the proxy and every connection through it. */
  close(): Promise<void>;
}

/** Starts a proxy on 127.0.0.1, port 0, to the service at `url` (its host and port). */
export async function tproxy(url: string): Promise<TProxy> {
  const target = new URL(url);
  const sockets = new Set<Socket>();
  let stalled: StallDirection | null = null;
  /** What a stall held, in the order it happened. */
  let held: (() => void)[] = [];

  /** Runs `action` on bytes (or the end) going `toService` or back, now or after the stall. */
  const pass = (toService: boolean, action: () => void) => {
    const holding = stalled === 'both' || (stalled === 'answers' && !toService);
    if (holding) held.push(action);
    else action();
  };

  /** Forwards `from` to `to`: data, then the end, and an abrupt close as one. */
  const forward = (from: Socket, to: Socket, toService: boolean) => {
    from.on('data', (chunk: Buffer) => pass(toService, () => to.write(chunk)));
    from.on('end', () => pass(toService, () => to.end()));
    from.on('error', () => {});
    from.on('close', (hadError) => {
      sockets.delete(from);
      if (hadError) pass(toService, () => to.destroy());
    });
  };

  const server = createServer({ allowHalfOpen: true }, (client) => {
    const service = connect({
      host: target.hostname,
      port: Number(target.port),
      allowHalfOpen: true,
    });
    sockets.add(client);
    sockets.add(service);
    forward(client, service, true);
    forward(service, client, false);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    port,
    via(url) {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    stall(direction = 'both') {
      stalled = direction;
    },
    resume() {
      stalled = null;
      const actions = held;
      held = [];
      for (const action of actions) action();
    },
    cut() {
      held = [];
      for (const socket of sockets) socket.destroy();
    },
    async close() {
      stalled = null;
      held = [];
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** What `/readyz` answered. */
export interface TReadiness {
  status: number;
  body: { status: string; reason?: string };
}

/** GETs `${url}/readyz`. */
export async function treadyz(url: string): Promise<TReadiness> {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, body: (await res.json()) as TReadiness['body'] };
}

/** Checks that `${url}/readyz` answers 503 within 2 s, with a reason naming `component`. */
export async function expectUnready(url: string, component: RegExp): Promise<void> {
  const started = Date.now();
  const readiness = await within(treadyz(url), 2_000, '/readyz during the stall');
  expect(Date.now() - started).toBeLessThan(2_000);
  expect(readiness).toMatchObject({
    status: 503,
    body: { status: 'unavailable', reason: expect.stringMatching(component) },
  });
}

/** Polls `check` until it holds; rejects after `ms` naming `what`. */
export async function eventually(
  check: () => Promise<boolean>,
  what: string,
  ms = 15_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
