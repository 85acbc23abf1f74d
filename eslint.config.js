// ESLint flat config: typescript-eslint's type-aware recommended set plus a few project rules.
// Run with `npx eslint .` (part of `npm run lint`).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/',
      'node_modules/',
      'bench/results/',
      'bench/.build/',
      'test-results/',
      'playwright-report/',
      '.starling/',
      'scratch/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        // Finds tsconfig.json the way editors do; as fast as `project: './tsconfig.json'` here (~21 s either way).
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      eqeqeq: ['error', 'always'],
      '@typescript-eslint/consistent-type-imports': [
        'error',
        { prefer: 'type-imports', fixStyle: 'separate-type-imports' },
      ],
      // Fire-and-forget is spelled `void p`; everything else must be awaited or handled.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          ignoreVoid: true,
          // node:test's describe/it return promises that the runner itself awaits.
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] },
          ],
        },
      ],
      // Arrays of numbers read fine in messages (`sizes ${[1, 2]}`); objects, unknown and any still flagged.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowArray: true }],
      // `async` methods without `await` implement Promise-returning interfaces (mocks, job-runner hooks);
      // no-floating-promises and no-misused-promises catch the real async mistakes.
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          args: 'after-used',
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
    },
  },
  {
    // Tests assert on parsed JSON (`await res.json()`, safetensors headers): the assertions check the
    // shape, so typing every response in a test is noise.
    files: ['**/*.test.ts', '**/*.spec.ts', '**/*.test-helper.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    // Plain JS (this file, bin/, scripts/*.mjs) is not in tsconfig: lint it without type information.
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // TypeScript checks undefined names in .ts; the few Node scripts in JS name their globals here
    // (the `globals` package is only a transitive dependency, so it is not imported).
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
);
