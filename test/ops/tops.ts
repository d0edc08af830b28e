/** Helpers of the operations tests: scraping `/metrics`, and a logger that keeps its lines. */
import { pino, type Logger } from 'pino';
import { expect } from 'vitest';

/** One scrape: `name{labels}` (as printed) → value. */
export type Scrape = Map<string, number>;

/** GETs `/metrics` of `url` with `headers`; fails unless the answer is 200. */
export async function scrape(url: string, headers: Record<string, string> = {}): Promise<Scrape> {
  const res = await fetch(`${url}/metrics`, { headers });
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${await res.text()}`);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseMetrics(await res.text());
}

/** Parses the Prometheus text format into samples. */
export function parseMetrics(text: string): Scrape {
  const samples: Scrape = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

/** The value of `key` in a scrape; 0 when the sample is absent. */
export const sample = (s: Scrape, key: string): number => s.get(key) ?? 0;

/** How much `key` moved between two scrapes. */
export const moved = (before: Scrape, after: Scrape, key: string): number =>
  sample(after, key) - sample(before, key);

/** A JSON log line. */
export type LogLine = Record<string, unknown> & { msg: string; level: number };

/** A pino logger at `level` whose lines are parsed into `lines`. */
export function arrayLogger(level = 'info'): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino(
    { level },
    { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) },
  );
  return { logger, lines };
}
