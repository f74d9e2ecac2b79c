// Layering is enforced here: imports go one way (see ARCHITECTURE.md).
import tseslint from 'typescript-eslint';

/** Import patterns for whole layers: the folder itself (its index) and anything inside it. */
const layers = (...names) => names.flatMap((n) => [`**/${n}`, `**/${n}/**`]);
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
    // Temporary folders come from util/scratch.ts: removed at exit, swept by the next run after a kill.
    files: ['src/**/*.ts'],
    ignores: ['src/core/util/scratch.ts'],
    rules: {
      'no-restricted-properties': ['error', { object: 'fs', property: 'mkdtempSync', message: 'use makeScratchDir (src/core/util/scratch.ts): removed at exit, and swept by the next run if the process is killed.' }],
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
  // Inside core, imports go one way: ir ← formats ← analysis ← runtime ← train ← transforms ← jobs.
  // analysis is static (it never runs a model); runtime runs models; train builds on runtime;
  // transforms use all of them; jobs (and recipe.ts) drive transforms. `npm run cycles` (madge,
  // part of `npm run lint`) keeps every folder free of import loops.
  ...[
    ['src/core/ir/**/*.ts', layers('formats', 'analysis', 'runtime', 'train', 'transforms', 'jobs', 'recipe')],
    ['src/core/formats/**/*.ts', layers('analysis', 'runtime', 'train', 'transforms', 'jobs', 'recipe')],
    ['src/core/analysis/**/*.ts', layers('runtime', 'train', 'transforms', 'jobs', 'recipe')],
    ['src/core/runtime/**/*.ts', layers('train', 'transforms', 'jobs', 'recipe')],
    ['src/core/train/**/*.ts', layers('transforms', 'jobs', 'recipe')],
    ['src/core/transforms/**/*.ts', layers('jobs', 'recipe')],
    // Per-format folders: the code of one format never reaches into another format's folder.
    // (A file matched by several entries gets the last one's rule: these repeat the transforms groups.)
    ['src/core/transforms/*/onnx/**/*.ts', [...layers('jobs', 'recipe'), '../tfjs-layers/**', '../tfjs/**', '../../*/tfjs-layers/**', '../../*/tfjs/**']],
    ['src/core/transforms/*/tfjs-layers/**/*.ts', [...layers('jobs', 'recipe'), '../onnx/**', '../../*/onnx/**']],
    ['src/core/transforms/*/tfjs/**/*.ts', [...layers('jobs', 'recipe'), '../onnx/**', '../../*/onnx/**']],
  ].map(([files, groups, ignores = []]) => ({
    files: [files],
    ignores,
    rules: {
      'no-restricted-imports': ['error', {
        paths: [{ name: 'vscode', message: 'src/core runs in the worker and the CLI: it never imports vscode.' }],
        patterns: [
          { group: ['**/host/**', '**/worker/**', '**/cli/**', '**/webview/**', '**/protocol/**'], message: 'src/core depends on nothing outside src/core.' },
          { group: groups, message: 'inside core, imports go one way: ir ← formats ← analysis ← runtime ← train ← transforms ← jobs; a format folder never imports another format’s.' },
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
