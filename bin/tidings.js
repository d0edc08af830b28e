#!/usr/bin/env node
// The `tidings` command. The implementation is compiled to dist/ by the `prepare` script, which
// `npm install` and `npm ci` run.
import '../dist/cli/run.js';
