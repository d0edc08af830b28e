/**
 * The packages a start loads: the embedded default (SQLite store, memory bus) loads neither `pg`
 * nor `ioredis`, and a backend whose package is missing says how to install it.
 */
import { describe, expect, it } from 'vitest';
import { tmodules } from '../tmodules.js';

/** Runs `code` (an ES module, in the repository's root) in a child and records what it loads. */
const run = (code: string, deny: readonly string[] = []) =>
  tmodules(['--input-type=module', '--eval', code], { deny });

/** Prints what an awaited call threw: its class, code, message and the code of its cause. */
const report = (call: string) => `
try {
  await ${call};
  console.log(JSON.stringify({ ok: true }));
} catch (err) {
  console.log(JSON.stringify({
    name: err.constructor.name, code: err.code, message: err.message, cause: err.cause?.code,
  }));
}`;

describe('packages loaded by a start', () => {
  it('should load neither pg nor ioredis for the default start: a SQLite file and the memory bus', async () => {
    const { code, stderr, packages, sources } = await run(`
      import { mkdtempSync, rmSync } from 'node:fs';
      import { tmpdir } from 'node:os';
      import { join } from 'node:path';
      const { buildApp } = await import('./src/app.ts');
      const dir = mkdtempSync(join(tmpdir(), 'tidings-default-'));
      const app = await buildApp({ store: 'sqlite:' + join(dir, 'events.db'), logLevel: 'silent' });
      await app.publish([{ type: 'started' }]);
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    `);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    // What the default start does load is seen: the trace works.
    expect(packages).toEqual(expect.arrayContaining(['better-sqlite3', 'graphql', 'pino']));
    expect(sources).toEqual(expect.arrayContaining(['app.ts', 'store/sqlite.ts', 'bus/memory.ts']));
    expect(packages).not.toContain('pg');
    expect(packages).not.toContain('ioredis');
    expect(sources).not.toContain('store/postgres.ts');
    expect(sources).not.toContain('bus/redis.ts');
  });

  it('should say how to install pg when a PostgreSQL store is asked for without it', async () => {
    const { stdout, packages } = await run(
      `const { createStore } = await import('./src/store/index.ts');
       ${report("createStore('postgres://postgres@127.0.0.1:5432/test')")}`,
      ['pg'],
    );
    expect(JSON.parse(stdout)).toEqual({
      name: 'ConfigError',
      code: 'BAD_CONFIG',
      message: expect.stringMatching(
        /^TIDINGS_STORE=postgres:\/\/… needs the package "pg", which cannot be loaded \(Cannot find package 'pg'.*\): install it with npm install pg$/,
      ),
      cause: 'ERR_MODULE_NOT_FOUND',
    });
    expect(packages).not.toContain('pg');
  });

  it('should say how to install ioredis when a Redis bus is asked for without it', async () => {
    const { stdout } = await run(
      `const { createBus } = await import('./src/bus/index.ts');
       const { pino } = await import('pino');
       ${report("createBus('redis://127.0.0.1:6379', pino({ level: 'silent' }))")}`,
      ['ioredis'],
    );
    expect(JSON.parse(stdout)).toEqual({
      name: 'ConfigError',
      code: 'BAD_CONFIG',
      message: expect.stringMatching(
        /^TIDINGS_BUS=redis:\/\/… needs the package "ioredis", .*: install it with npm install ioredis$/,
      ),
      cause: 'ERR_MODULE_NOT_FOUND',
    });
  });

  it('should stop tidings serve with a usage error naming the package to install', async () => {
    const { code, stderr } = await tmodules(
      [
        'src/cli/run.ts',
        'serve',
        '--store',
        'postgres://postgres@127.0.0.1:5432/test',
        '--port',
        '0',
      ],
      { deny: ['pg'], env: { LOG_LEVEL: 'silent' } },
    );
    expect(stderr).toMatch(/^tidings serve: cannot start: .*npm install pg\n$/);
    expect(code).toBe(2);
  });
});
