// Writes the job-field tables of docs/JOBS.md from the schema (src/schema/docs.ts).
// Run: node --import tsx scripts/gen-schema-docs.ts
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { updateJobDoc } from '../src/schema/docs';

const path = fileURLToPath(new URL('../docs/JOBS.md', import.meta.url));
const before = readFileSync(path, 'utf8');
const after = updateJobDoc(before);
if (after !== before) writeFileSync(path, after);
console.log(after === before ? 'docs/JOBS.md is up to date' : 'docs/JOBS.md: job-field tables rewritten');
