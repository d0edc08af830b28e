#!/usr/bin/env node
/**
 * The executable entry of the `tidings` command (the package's `bin` points at its compiled form).
 */
import { main } from './main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`tidings: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
