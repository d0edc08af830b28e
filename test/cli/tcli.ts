/** Runs the `tidings` CLI from source in a child process. */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** A running CLI process with its output so far. */
export interface TProcess {
  child: ChildProcessWithoutNullStreams;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  /** Resolves with the server URL once the process logged "listening". */
  listening(ms?: number): Promise<string>;
}

/** Spawns `tidings ...args` with `env` added to the environment. */
export function tcli(args: string[], env: Record<string, string> = {}): TProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', ...args], {
    cwd: root,
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    async listening(ms = 20_000) {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline) {
        const match = /"url":"(http:\/\/[^"]+)"/.exec(out);
        if (match) return match[1] as string;
        if (child.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`server did not start:\n${out}\n${err}`);
    },
  };
}
