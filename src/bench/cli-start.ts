/**
 * `tsx src/bench/cli-start.ts [--runs 20] [--dist dist] [--vs other/dist]`: how long the built
 * `tidings` command takes to start and exit, against a bare `node -e ''` on the same machine.
 *
 * Each command of the list (`--help`, `serve --help`, …) is run `--runs` times, alternating with
 * the bare Node process so that a machine getting busier or quieter moves both alike, and the
 * medians of the wall times are printed with their ratio to Node's. `--vs DIR` runs the CLI of
 * another build (e.g. the one before a change) in the same rounds, for a side-by-side figure.
 * Build first: `npx tsc -p tsconfig.json`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '20' },
    dist: { type: 'string', default: 'dist' },
    vs: { type: 'string' },
  },
});
const runs = Number(values.runs);
const builds = [values.dist, ...(values.vs ? [values.vs] : [])].map((d) => resolve(d as string));
for (const dir of builds) {
  if (!existsSync(join(dir, 'cli/run.js'))) {
    throw new Error(`${dir}/cli/run.js not found: build first (npx tsc -p tsconfig.json)`);
  }
}
const COMMANDS = [['--help'], ['serve', '--help'], ['token', '--help'], ['tail', '--help']];

/** Wall time of one run of `node ...args`, ms; throws when it fails. */
function time(args: readonly string[]): number {
  const start = performance.now();
  const { status, stderr } = spawnSync(process.execPath, args, { encoding: 'utf8' });
  const ms = performance.now() - start;
  if (status !== 0) throw new Error(`node ${args.join(' ')} exited ${status}: ${stderr}`);
  return ms;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

const bare = ['-e', ''];
const samples = new Map<string, number[]>();
const add = (key: string, ms: number) => samples.set(key, [...(samples.get(key) ?? []), ms]);
time(bare);
for (let i = 0; i < runs; i++) {
  add("node -e ''", time(bare));
  for (const dir of builds) {
    for (const command of COMMANDS)
      add(`${dir} ${command.join(' ')}`, time([join(dir, 'cli/run.js'), ...command]));
  }
}
const node = median(samples.get("node -e ''") ?? []);
console.log(`${'command'.padEnd(60)} ${'median ms'.padStart(10)} ${'x node'.padStart(7)}`);
for (const [key, values] of samples) {
  const ms = median(values);
  console.log(
    `${key.padEnd(60)} ${ms.toFixed(0).padStart(10)} ${(ms / node).toFixed(2).padStart(7)}`,
  );
}
