/**
 * The README's examples for each kind of user, run as written against a real server: every code
 * block after a `<!-- tested: name -->` line. TypeScript blocks run with tsx in a child process
 * (imports of `tidings` resolve to these sources); shell blocks run with bash.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tserver, type TServer } from './tserver.js';
import { waitFor } from './transport/helpers.js';

const root = fileURLToPath(new URL('../', import.meta.url));
const workDir = join(root, 'node_modules', '.cache', 'tidings-readme');

/** The tested blocks of the README, by name. */
function testedBlocks(): Map<string, { lang: string; code: string }> {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const blocks = new Map<string, { lang: string; code: string }>();
  const pattern = /<!-- tested: ([\w-]+) -->\s*```(\w+)\n([\s\S]*?)\n```/g;
  for (const m of readme.matchAll(pattern)) {
    blocks.set(m[1] as string, { lang: m[2] as string, code: m[3] as string });
  }
  return blocks;
}

const IMPORTS: Record<string, string> = {
  tidings: 'src/index.ts',
  'tidings/client': 'src/client/index.ts',
  'tidings/testing': 'src/testing.ts',
};

/** Starts a block in a child process; resolves its exit code and output. */
function run(name: string, env: Record<string, string>) {
  const block = blocks.get(name);
  if (!block) throw new Error(`README has no block marked <!-- tested: ${name} -->`);
  let command: string[];
  if (block.lang === 'ts') {
    const code = block.code.replace(
      /from '(tidings(?:\/\w+)?)'/g,
      (_m, spec: string) => `from '${join(root, IMPORTS[spec] as string)}'`,
    );
    const file = join(workDir, `${name}.mts`);
    writeFileSync(file, code);
    command = [process.execPath, '--import', 'tsx', file];
  } else {
    command = ['bash', '-euo', 'pipefail', '-c', block.code];
  }
  const child = spawn(command[0] as string, command.slice(1), {
    cwd: root,
    env: { ...process.env, ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  void exited.then(() => clearTimeout(timer));
  return { exited, stdout: () => stdout, stderr: () => stderr };
}

let s: TServer;
let blocks: Map<string, { lang: string; code: string }>;
beforeAll(async () => {
  mkdirSync(workDir, { recursive: true });
  blocks = testedBlocks();
  s = await tserver();
});
afterAll(() => s.stop());

describe('README examples', () => {
  it('should have a tested block for each kind of user', () => {
    expect([...blocks.keys()].sort()).toEqual([
      'frontend',
      'operator',
      'orchestrator',
      'service',
      'service-testing',
      'websocket',
    ]);
  });

  it('frontend: follows an inbox with the graphql-sse client', async () => {
    const before = s.app.hub.size;
    const p = run('frontend', { TIDINGS_URL: s.url });
    await waitFor(() => s.app.hub.size > before, 'the example to subscribe', 20_000);
    await s.app.publish([
      { type: 'vm.started', inbox: 'pdfm', message: 'vm-42 is up' },
      { type: 'demo.done', inbox: 'pdfm' },
    ]);
    expect(await p.exited).toBe(0);
    expect(p.stdout()).toContain('vm.started vm-42 is up');
  });

  it('websocket: follows an inbox with the graphql-ws client', async () => {
    const before = s.app.hub.size;
    const p = run('websocket', { TIDINGS_URL: s.url });
    await waitFor(() => s.app.hub.size > before, 'the example to subscribe', 20_000);
    await s.app.publish([
      { type: 'vm.started', inbox: 'pdfm', message: 'vm-42 is up' },
      { type: 'demo.done', inbox: 'pdfm' },
    ]);
    expect(await p.exited, p.stderr()).toBe(0);
    expect(p.stdout()).toContain('vm.started vm-42 is up');
  });

  it('orchestrator: reads the history, then follows the hosts live', async () => {
    await s.app.publish([{ type: 'host.crashed', inbox: 'host-3', severity: 'ERROR' }]);
    const p = run('orchestrator', { TIDINGS_URL: s.url });
    await waitFor(() => p.stderr().includes('stream live'), 'the stream to be live', 20_000);
    await s.app.publish([
      { type: 'host.heartbeat', inbox: 'host-1', body: { load: 0.5 } },
      { type: 'demo.done', inbox: 'host-2' },
    ]);
    expect(await p.exited).toBe(0);
    expect(p.stdout()).toContain('earlier: host-3 host.crashed');
    expect(p.stdout()).toMatch(/host-1 host\.heartbeat \{ load: 0\.5 \}/);
  });

  it('service: embeds Tidings and publishes with emit and the builder', async () => {
    const p = run('service', {});
    expect(await p.exited).toBe(0);
    expect(p.stdout()).toMatch(/published \d{12}/);
  });

  it('service-testing: checks what it emitted', async () => {
    const p = run('service-testing', {});
    expect(await p.exited, p.stderr()).toBe(0);
  });

  it('operator: health, readiness and a history query with curl', async () => {
    const p = run('operator', { TIDINGS_URL: s.url });
    expect(await p.exited, p.stderr()).toBe(0);
    expect(p.stdout()).toContain('{"status":"ok"}');
    expect(p.stdout()).toContain('{"status":"ready"}');
    expect(p.stdout()).toContain('host.crashed');
  });
});
