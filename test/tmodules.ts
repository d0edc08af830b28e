/**
 * Which modules a piece of Tidings loads: runs it in a child process (from source, with tsx)
 * whose module hooks record every module resolved, and can make packages unresolvable, as if
 * they were not installed.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const hooks = pathToFileURL(join(root, 'test/tmodules-hooks.mjs')).href;
/** Registers the hooks in the child, after tsx's, so they see every module tsx resolves. */
const register = `data:text/javascript,import{register}from'node:module';register(${JSON.stringify(hooks)})`;

/** What a child process loaded and printed. */
export interface TModules {
  /** Exit code. */
  code: number | null;
  stdout: string;
  stderr: string;
  /** The packages it loaded from node_modules (`pg`, `@scope/name`), sorted. */
  packages: string[];
  /** The files of `src/` it loaded, relative to `src/` (`cli/main.ts`), sorted. */
  sources: string[];
}

/** Names of the packages among `urls` (by their last `node_modules/` segment). */
function packagesOf(urls: readonly string[]): string[] {
  const names = new Set<string>();
  for (const url of urls) {
    const m = /.*\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
    if (m?.[1]) names.add(m[1]);
  }
  return [...names].sort();
}

/**
 * Runs `node --import tsx <hooks> ...args` in the repository, with `env` added and the packages
 * in `deny` unresolvable.
 */
export async function tmodules(
  args: readonly string[],
  options: { env?: Record<string, string>; deny?: readonly string[] } = {},
): Promise<TModules> {
  const dir = mkdtempSync(join(tmpdir(), 'tidings-modules-'));
  const trace = join(dir, 'trace.txt');
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', '--import', register, ...args], {
      cwd: root,
      env: {
        ...process.env,
        ...options.env,
        TIDINGS_TRACE_FILE: trace,
        TIDINGS_DENY: (options.deny ?? []).join(','),
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    let urls: string[] = [];
    try {
      urls = readFileSync(trace, 'utf8').split('\n').filter(Boolean);
    } catch {
      throw new Error(`the child recorded no module (exit ${code}):\n${stderr}`);
    }
    const src = pathToFileURL(join(root, 'src')).href + '/';
    const sources = [
      ...new Set(urls.filter((u) => u.startsWith(src)).map((u) => u.slice(src.length))),
    ].sort();
    return { code, stdout, stderr, packages: packagesOf(urls), sources };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
