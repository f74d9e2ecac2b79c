// Layering is enforced here: imports go one way (see ARCHITECTURE.md).
import tseslint from 'typescript-eslint';

const restrict = (patterns, message) => ['error', { patterns: patterns.map((group) => ({ group: [group], message })) }];

export default tseslint.config(
  { ignores: ['out/**', 'dist/**', 'node_modules/**', '.test-artifacts/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-require-imports': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [{ name: 'vscode', message: 'src/core runs in the worker and the CLI: it never imports vscode.' }],
        patterns: [{ group: ['**/host/**', '**/worker/**', '**/cli/**', '**/webview/**', '**/protocol/**'], message: 'src/core depends on nothing outside src/core.' }],
      }],
    },
  },
  // Inside core, imports go one way: ir ← formats ← analysis ← transforms ← jobs (runtime sits beside analysis).
  ...[
    ['src/core/ir/**/*.ts', ['**/formats/**', '**/analysis/**', '**/runtime/**', '**/transforms/**', '**/jobs/**', '**/train/**']],
    ['src/core/formats/**/*.ts', ['**/analysis/**', '**/transforms/**', '**/jobs/**', '**/train/**']],
    // sensitivity.ts runs pruning variants: the one analysis file that still uses transforms (to move under transforms/prune).
    ['src/core/analysis/**/*.ts', ['**/transforms/**', '**/jobs/**'], ['src/core/analysis/sensitivity.ts']],
    ['src/core/runtime/**/*.ts', ['**/transforms/**', '**/jobs/**']],
    ['src/core/transforms/**/*.ts', ['**/jobs/**']],
  ].map(([files, groups, ignores = []]) => ({
    files: [files],
    ignores,
    rules: {
      'no-restricted-imports': ['error', {
        paths: [{ name: 'vscode', message: 'src/core runs in the worker and the CLI: it never imports vscode.' }],
        patterns: [
          { group: ['**/host/**', '**/worker/**', '**/cli/**', '**/webview/**', '**/protocol/**'], message: 'src/core depends on nothing outside src/core.' },
          { group: groups, message: 'inside core, imports go one way: ir ← formats ← analysis/runtime ← transforms ← jobs.' },
        ],
      }],
    },
  })),
  {
    files: ['src/protocol/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [{ name: 'vscode', message: 'protocol is plain types.' }],
        patterns: [{ group: ['**/core/**', '**/host/**', '**/worker/**', '**/cli/**', '**/webview/**'], message: 'protocol holds typed messages only; it imports nothing from other layers.' }],
      }],
    },
  },
  {
    files: ['src/worker/**/*.ts', 'src/cli/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [{ name: 'vscode', message: 'only src/host imports vscode.' }],
        patterns: [{ group: ['**/host/**', '**/webview/**'], message: 'worker and CLI sit below the host and the webview.' }],
      }],
    },
  },
  {
    files: ['webview/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [{ name: 'vscode', message: 'the webview is browser code.' }],
        patterns: [{ group: ['**/src/core/**', '**/src/host/**', '**/src/worker/**', '**/src/cli/**', 'fs', 'path', 'child_process', 'onnxruntime-node'], message: 'the webview imports only src/protocol (and browser libraries).' }],
      }],
    },
  },
);
