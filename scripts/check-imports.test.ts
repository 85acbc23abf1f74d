// scripts/check-imports.mjs on the repository (must pass) and on small synthetic trees (must fail,
// naming the chain).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('./check-imports.mjs', import.meta.url));

function check(root?: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [SCRIPT, ...(root ? [root] : [])], { encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'check-imports-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

test('the repository has no import cycles and no imports up the layers', () => {
  const r = check();
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /no cycles, no imports up the layers/);
});

test('a cycle (type-only and multi-line imports included) fails, printing the chain', () => {
  const root = tree({
    'src/compress/a.ts': "import type { C } from './c';\nexport type A = C;\n",
    'src/compress/b.ts': "import {\n  type A,\n} from './a';\nexport type B = A;\n",
    'src/compress/c.ts': "// import { x } from './nowhere';\nexport * from './b';\nexport type C = number;\n",
    'src/util/ok.ts': 'export const ok = 1;\n',
  });
  try {
    const r = check(root);
    assert.equal(r.status, 1, r.out);
    const chain = ['a', 'c', 'b', 'a'].map((f) => `src/compress/${f}.ts`).join(' → ');
    assert.ok(r.out.includes(`import cycle: ${chain}`), r.out);
    assert.doesNotMatch(r.out, /import up the layers/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('an import up the layers fails; tests may import upwards; a clean tree passes', () => {
  const root = tree({
    'src/util/u.ts': 'export const u = 1;\n',
    'src/compress/codec.ts': "import { u } from '../util/u';\nexport const c = u;\n",
    'src/gpu/k.ts': "import { c } from '../compress/codec';\nexport const k = c;\n",
    'src/compress/k.test.ts': "import { k } from '../gpu/k';\nexport const t = k;\n",
    'src/compress/fam/fam.gpu.ts': "import { k } from '../../gpu/k';\nexport const g = k;\n",
  });
  try {
    assert.equal(check(root).status, 0, check(root).out);
    writeFileSync(join(root, 'src/compress/up.ts'), "export { k } from '../gpu/k';\n");
    const r = check(root);
    assert.equal(r.status, 1, r.out);
    const want = 'import up the layers: src/compress/up.ts → src/gpu/k.ts: src/gpu (layer 2) is above src/compress';
    assert.ok(r.out.includes(want), r.out);
    assert.doesNotMatch(r.out, /k\.test\.ts|fam\.gpu\.ts →/);
    writeFileSync(join(root, 'src/compress/fam/fam.ts'), "export { g } from './fam.gpu';\n");
    assert.match(check(root).out, /src\/compress\/fam\/fam\.ts → src\/compress\/fam\/fam\.gpu\.ts: .*\(gpu layer\)/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
