/**
 * The modules a CLI command loads: `--help` loads no package and nothing beyond the command line
 * itself, a command's own help only its module, and no command but `serve` loads the server.
 * (How long that takes is measured by timing the built CLI, not here.)
 */
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { tmodules } from '../tmodules.js';

const cli = (...args: string[]) => tmodules(['src/cli/run.ts', ...args]);

/** What no command but a running `serve` may load: the server and its heavy dependencies. */
const SERVER_PACKAGES = ['graphql', 'graphql-yoga', '@pothos/core', 'pino', 'zod', 'pg', 'ioredis'];

describe('modules loaded by the CLI', () => {
  it('should load no package and only the command line itself for --help', async () => {
    const { code, stdout, packages, sources } = await cli('--help');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Usage: tidings <command>/);
    expect(packages).toEqual([]);
    expect(sources).toEqual(['cli/main.ts', 'cli/run.ts']);
  });

  it('should load no package for serve --help, and not the server', async () => {
    const { code, stdout, packages, sources } = await cli('serve', '--help');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Usage: tidings serve/);
    expect(packages).toEqual([]);
    expect(sources).not.toContain('app.ts');
  });

  it.each(['token', 'tail', 'publish', 'events', 'purge', 'export'])(
    'should load none of the server for %s --help',
    async (command) => {
      const { code, stdout, packages, sources } = await cli(command, '--help');
      expect(code).toBe(0);
      expect(stdout).toMatch(new RegExp(`^Usage: tidings ${command}`));
      expect(packages.filter((p) => SERVER_PACKAGES.includes(p))).toEqual([]);
      expect(sources).not.toContain('app.ts');
    },
  );

  it('should treat a name every object inherits, such as constructor, as an unknown command', async () => {
    let err = '';
    const code = await main(['constructor'], { out: () => {}, err: (t) => (err += t) }, {});
    expect(code).toBe(2);
    expect(err).toMatch(/^tidings: unknown command "constructor"/);
  });
});
