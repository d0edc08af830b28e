/**
 * Conformance to the GraphQL-over-HTTP specification, as graphql-http's own server audits check
 * it, against `/graphql` of a real server.
 */
import { serverAudits } from 'graphql-http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tserver, type TServer } from '../tserver.js';

let s: TServer;
beforeAll(async () => {
  s = await tserver();
});
afterAll(() => s.stop());

/** Runs every audit through `fetchFn`; returns the ones that did not pass, and how many ran. */
async function failedAudits(fetchFn: typeof fetch = fetch) {
  const audits = serverAudits({ url: `${s.url}/graphql`, fetchFn });
  const failed: string[] = [];
  for (const audit of audits) {
    const result = await audit.fn();
    if (result.status !== 'ok') failed.push(`${audit.id} ${audit.name}: ${result.reason}`);
  }
  return { failed, levels: new Set(audits.map((a) => a.name.split(' ')[0])) };
}

/** `fetch`, with the media types of `Content-Type` and `Accept` in upper case. */
const shouting: typeof fetch = (input, init = {}) => {
  const headers = new Headers(init.headers);
  for (const name of ['content-type', 'accept']) {
    const value = headers.get(name);
    if (value) headers.set(name, value.toUpperCase());
  }
  return fetch(input, { ...init, headers });
};

describe('GraphQL over HTTP conformance', () => {
  it('should pass every audit of graphql-http: MUST, SHOULD and MAY', async () => {
    const { failed, levels } = await failedAudits();
    expect(levels).toEqual(new Set(['MUST', 'SHOULD', 'MAY']));
    expect(failed).toEqual([]);
  });

  it('should pass them all with the media types in upper case', async () => {
    const { failed } = await failedAudits(shouting);
    expect(failed).toEqual([]);
  });
});
