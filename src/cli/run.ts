#!/usr/bin/env node
/**
 * The executable entry of the `tidings` command (the package's `bin` points at its compiled form).
 *
 * A server runs in production mode unless `NODE_ENV` says otherwise: graphql-js then tests types
 * with a plain `instanceof` instead of its development check for duplicate copies of graphql,
 * which runs on every type test and weighs on the coercion of large mutation inputs. graphql-js
 * reads `NODE_ENV` once, when it loads, so the rest of the program is imported after it is set.
 */
process.env.NODE_ENV ??= 'production';
const { main } = await import('./main.js');

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`tidings: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
