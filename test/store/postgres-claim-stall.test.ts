/**
 * The claim of a PostgreSQL schema (see `claimPostgres`) behind a stalled server, made by a TCP
 * proxy in front of the machine's PostgreSQL: taking the claim fails within its deadline instead
 * of hanging start-up, and a claim connection that stops answering is found out, so `check()`
 * fails, then the claim is taken again once the server answers.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { claimPostgres } from '../../src/store/postgres.js';
import type { StoreClaim } from '../../src/store/types.js';
import { within } from '../process/tprocess.js';
import { eventually, tproxy, type TProxy } from '../tproxy.js';

const PG = process.env.TIDINGS_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
/** The store deadline of these tests, ms. */
const TIMEOUT_MS = 1_000;

let proxy: TProxy;
let url: string;
let claim: StoreClaim | undefined;
beforeEach(async () => {
  proxy = await tproxy(PG);
  const u = new URL(proxy.via(PG));
  u.searchParams.set('schema', `tidings_claim_${randomUUID().replaceAll('-', '').slice(0, 12)}`);
  url = u.toString();
});
afterEach(async () => {
  proxy.resume();
  await claim?.release();
  claim = undefined;
  await proxy.close();
});

const holds = () => {
  try {
    (claim as StoreClaim).check();
    return true;
  } catch {
    return false;
  }
};

describe('a PostgreSQL claim behind a stalled server', () => {
  it('should fail to take the claim within its deadline instead of hanging', async () => {
    proxy.stall();
    const taking = claimPostgres(url, 'exclusive', TIMEOUT_MS);
    const err = await within(
      taking.then(
        () => null,
        (e: unknown) => e,
      ),
      // The connect timeout (10 s) and the store deadline, with room for a loaded machine.
      25_000,
      'the claim to fail',
    );
    expect(err).toMatchObject({ code: 'STORE_ERROR' });
    expect((err as Error).message).toMatch(/cannot claim schema/);
  }, 40_000);

  it('should fail check() once the claim connection stops answering, and take the claim again once it answers', async () => {
    claim = await claimPostgres(url, 'exclusive', TIMEOUT_MS);
    expect(holds()).toBe(true);
    proxy.stall();
    await eventually(async () => !holds(), 'check() to fail during the stall', 20_000);
    expect(() => (claim as StoreClaim).check()).toThrow(/claim on schema .* broke/);
    proxy.resume();
    await eventually(async () => holds(), 'the claim to be taken again', 20_000);
  }, 60_000);
});
