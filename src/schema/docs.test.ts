import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { fieldTable, updateJobDoc } from './docs';
import { JobTrain } from './job';

test('docs/JOBS.md has the job-field tables the schema gives (run scripts/gen-schema-docs.ts)', () => {
  const doc = readFileSync(fileURLToPath(new URL('../../docs/JOBS.md', import.meta.url)), 'utf8');
  assert.equal(updateJobDoc(doc), doc, 'docs/JOBS.md is out of date: node --import tsx scripts/gen-schema-docs.ts');
});

test('a table row carries type, default, limits and description from the schema', () => {
  const t = fieldTable([['train.lr', JobTrain.properties.lr]]);
  assert.match(
    t,
    /^\| `train\.lr` \| number \| `0\.003` \| number in \(0, 1\] \| the donors' \(inner\) AdamW learning rate \|$/m,
  );
  assert.throws(() => updateJobDoc('no markers'), /lacks the markers <!-- schema:name -->/);
});
