// Module hooks of test/tmodules.ts, registered in the child process it spawns: every module the
// child resolves is appended to TIDINGS_TRACE_FILE, and the packages named in TIDINGS_DENY cannot
// be resolved, as if they were not installed.
import { appendFileSync } from 'node:fs';

const trace = process.env.TIDINGS_TRACE_FILE;
const denied = new Set((process.env.TIDINGS_DENY ?? '').split(',').filter(Boolean));

export async function resolve(specifier, context, nextResolve) {
  const name = specifier.startsWith('@')
    ? specifier.split('/').slice(0, 2).join('/')
    : specifier.split('/')[0];
  if (denied.has(name)) {
    const err = new Error(`Cannot find package '${name}' imported from ${context.parentURL}`);
    err.code = 'ERR_MODULE_NOT_FOUND';
    throw err;
  }
  const resolved = await nextResolve(specifier, context);
  if (trace) appendFileSync(trace, `${resolved.url}\n`);
  return resolved;
}
