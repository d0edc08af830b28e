/**
 * Helpers of the browser tests: Debian's Chromium driven by playwright-core, pages whose console
 * errors go to the test output, a record of every request that leaves the server's origin, and
 * screenshots saved under `test-artifacts/`.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/** The Chromium the tests drive (`TIDINGS_CHROMIUM` overrides it). */
export const CHROMIUM = process.env.TIDINGS_CHROMIUM ?? '/usr/bin/chromium';

/** Where screenshots go (ignored by git). */
export const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

/**
 * Whether the browser tests can run. Without Chromium they are skipped with a warning, except
 * under `CI=true`, where a missing browser is an error.
 */
export function chromiumAvailable(): boolean {
  if (existsSync(CHROMIUM)) return true;
  const message =
    `Chromium is not at ${CHROMIUM}: install it (apt-get install -y chromium) ` +
    'or set TIDINGS_CHROMIUM to its path';
  if (process.env.CI === 'true') throw new Error(`${message}; the browser tests need it under CI`);
  console.warn(`${message}; skipping the browser tests`);
  return false;
}

/**
 * Launches Chromium headless. Host names other than localhost and 127.0.0.1 do not resolve in it, so a page
 * that needed the internet would visibly fail.
 */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1',
    ],
  });
}

/** A page in a fresh context (no storage, no cookies) and what it reported. */
export interface TPage {
  page: Page;
  context: BrowserContext;
  /** Uncaught exceptions and `console.error` messages of the page. */
  errors: string[];
  /** Every request to somewhere other than the page's origin (`data:` and `blob:` excepted). */
  external: string[];
}

/** Opens a 1280×800 page for `origin`; its console errors and warnings go to the test output. */
export async function openPage(browser: Browser, origin: string): Promise<TPage> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const errors: string[] = [];
  const external: string[] = [];
  page.on('console', (message) => {
    const type = message.type();
    if (type !== 'error' && type !== 'warning') return;
    console.error(`[browser ${type}] ${message.text()}`);
    if (type === 'error') errors.push(message.text());
  });
  page.on('pageerror', (err) => {
    console.error(`[browser exception] ${err.stack ?? err.message}`);
    errors.push(err.message);
  });
  page.on('request', (request) => {
    const url = request.url();
    if (url.startsWith('data:') || url.startsWith('blob:')) return;
    if (new URL(url).origin !== origin) external.push(url);
  });
  return { page, context, errors, external };
}

/** Saves a full-page screenshot as `test-artifacts/<name>.png` and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** A server of another origin, where an attacker's page is opened; see {@link otherOrigin}. */
export interface OtherOrigin {
  /** Its port on 127.0.0.1. */
  port: number;
  close(): Promise<void>;
}

/**
 * Serves an empty page on 127.0.0.1 and a free port: another origin than the server's, from which
 * a test opens what a page of any site could.
 */
export async function otherOrigin(): Promise<OtherOrigin> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>elsewhere</title><body></body>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
