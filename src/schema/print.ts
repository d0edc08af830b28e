/** Writes schema.graphql from the Pothos schema (`npm run schema`). */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { printTidingsSchema } from './index.js';

const target = fileURLToPath(new URL('../../schema.graphql', import.meta.url));
writeFileSync(target, printTidingsSchema());
console.log(`wrote ${target}`);
